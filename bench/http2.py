"""HTTP/2 vs HTTP/1.1 for the chat client, against a real HTTP/2 server on loopback.

hypercorn (TLS, ALPN offering h2 and http/1.1) serves small chat completions. narrate's
pooled client (``make_http_client``) sends 50 sequential and then 50 concurrent calls
through ``ResilientChatClient``, once with ``http2=False`` (the baseline, measured in the
same run) and once with ``http2=True``. Reported: wall time, per-call p50/p99 latency and
the TCP connections the server saw.

    .venv/bin/python -m bench.http2 [--calls 50 --latency-ms 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.transport import make_http_client
from adapters.llm.chat.types import ChatMessage, ChatRequest
from tests.support.h2_server import H2ChatServer

REQUEST = ChatRequest(messages=(ChatMessage("user", "Say hi"),), max_tokens=8)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(
    server: H2ChatServer, *, http2: bool, calls: int, concurrent: bool
) -> tuple[float, list[float], int, str]:
    """(wall seconds, per-call latencies, connections, http version) for one run."""
    with server._lock:
        server.peers.clear()
    http = make_http_client(timeout_s=30, http2=http2, ca_bundle=server.ca_path,
                            max_connections=calls)  # fmt: skip
    client = ResilientChatClient(
        endpoints=[server.base_url], policy=ResiliencePolicy(qps=0, timeout_s=30), client=http
    )
    latencies: list[float] = []
    versions: set[str] = set()

    def one(_: int) -> None:
        started = time.perf_counter()
        result = client.complete(REQUEST)
        latencies.append(time.perf_counter() - started)
        versions.add(result.http_version or "?")

    started = time.perf_counter()
    if concurrent:
        with ThreadPoolExecutor(max_workers=calls) as pool:
            list(pool.map(one, range(calls)))
    else:
        for i in range(calls):
            one(i)
    wall = time.perf_counter() - started
    client.close()
    http.close()
    return wall, latencies, server.connections, ",".join(sorted(versions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="server think time")
    parser.add_argument("--rounds", type=int, default=3, help="runs per case; the median is shown")
    args = parser.parse_args()
    print(f"{args.calls} calls per run, server think time {args.latency_ms:g} ms, "
          f"median of {args.rounds} rounds")  # fmt: skip
    header = f"{'case':<28} {'version':>8} {'wall s':>7} {'p50 ms':>7} {'p99 ms':>7} {'conns':>5}"
    print(header)
    with (
        tempfile.TemporaryDirectory() as tmp,
        H2ChatServer(Path(tmp), latency_s=args.latency_ms / 1000) as server,
    ):
        for concurrent in (False, True):
            walls: dict[bool, float] = {}
            for http2 in (False, True):
                rounds = [
                    measure(server, http2=http2, calls=args.calls, concurrent=concurrent)
                    for _ in range(args.rounds)
                ]
                rounds.sort(key=lambda r: r[0])
                wall, latencies, conns, version = rounds[len(rounds) // 2]
                walls[http2] = wall
                case = f"{'concurrent' if concurrent else 'sequential'} {'h2' if http2 else 'h1.1'}"
                print(f"{case:<28} {version:>8} {wall:>7.3f} "
                      f"{1000 * statistics.median(latencies):>7.1f} "
                      f"{1000 * percentile(latencies, 0.99):>7.1f} {conns:>5}")  # fmt: skip
            kind = "concurrent" if concurrent else "sequential"
            print(f"  {kind}: HTTP/2 wall time = {walls[True] / walls[False]:.2f}x HTTP/1.1")


if __name__ == "__main__":
    main()
