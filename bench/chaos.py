"""Chaos benchmark: narrate's ResilientChatClient vs the official ``openai`` SDK under faults.

Each run sends N chat calls from a thread pool to a fresh fault-injecting loopback server
(``tests/support/fake_llm.py``) whose faults are drawn from the same seeded mix, and reports
success rate, p50/p99 latency per call and the number of HTTP requests the server received.
A streamed run cuts 20% of the streams after 3 deltas and counts a call as a success only
when the caller's deltas concatenate to exactly the reply (nothing lost, nothing repeated).
A second scenario sends calls to an out-of-credit account (``insufficient_quota``) and counts
the requests each client sends per call.

    .venv/bin/python -m bench.chaos                  # N=200, 8 threads, seed 1
    .venv/bin/python -m bench.chaos --n 500 --threads 16 --seed 7

Clients:
- ``openai SDK``: ``openai.OpenAI(base_url=..., api_key=...)`` with its defaults (2 retries,
  0.5-8 s backoff, honours ``retry-after-ms``, 600 s read timeout).
- ``openai SDK (timeout=...)``: the same with narrate's short request timeout, to separate
  the effect of the timeout from the retry policy.
- ``narrate``: ``ResilientChatClient`` with its defaults (4 retries, full jitter from 0.5 s,
  120 s deadline) but a short per-request timeout (``--timeout``) and no client-side rate
  limit (``qps=0``, as the SDK has none), against the same single endpoint.
- ``narrate + backup``: the same, with a second region (another fault server, same mix,
  other seed) as failover target.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.llm.chat.breaker import reset_breakers
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import ChatMessage, ChatRequest
from tests.support.fake_llm import FakeLLMServer

HANG_SECONDS = 4.0
MIX = {
    "ok": 0.60,
    "429-ms:200": 0.20,  # rate limited, retry-after-ms 200
    "503": 0.10,
    "reset": 0.05,
    f"hang:{HANG_SECONDS:g}": 0.05,  # no answer, then the connection is closed
}
STREAM_MIX = {"ok": 0.8, "stream-cut:3": 0.2}  # 3 deltas, then the connection drops
PROMPT = "Describe a photo of a red bus in front of the old railway station."
REPLY = "A red double-decker bus waits in front of the old railway station under a grey sky."
MODEL = "qwen3-max"
LATENCY = 0.05  # the fake server's think time per request, seconds


@dataclass(frozen=True)
class RunResult:
    """What one client achieved on one workload."""

    name: str
    calls: int
    ok: int
    latencies: list[float]
    requests: int

    @property
    def success_rate(self) -> float:
        return self.ok / self.calls if self.calls else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile over all calls (failed ones included), seconds."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


def run_calls(name: str, call: Callable[[], object], n: int, threads: int) -> tuple[int, list]:
    """Run ``call`` n times on a thread pool; (successes, latencies)."""

    def timed(_: int) -> tuple[bool, float]:
        started = time.perf_counter()
        try:
            call()
            ok = True
        except Exception:
            ok = False
        return ok, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(timed, range(n)))
    return sum(ok for ok, _ in outcomes), [t for _, t in outcomes]


def sdk_call(base_url: str, timeout: float | None = None) -> Callable[[], object]:
    """One chat call through the official SDK: its default retries, its or our timeout."""
    import openai

    if timeout is None:
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench")
    else:
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench", timeout=timeout)

    def call() -> object:
        return client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=200
        )

    return call


def narrate_call(endpoints: list[str], timeout: float) -> Callable[[], object]:
    """One chat call through narrate's resilient client."""
    client = ResilientChatClient(
        endpoints=endpoints, model=MODEL, policy=ResiliencePolicy(timeout_s=timeout, qps=0)
    )
    request = ChatRequest(messages=(ChatMessage("user", PROMPT),), max_tokens=200)
    return lambda: client.complete(request)


def start_server(mix: dict[str, float], seed: int) -> FakeLLMServer:
    """A running fault server with the benchmark's latency and a fixed reply."""
    return FakeLLMServer(
        mix=mix, seed=seed, hang_seconds=HANG_SECONDS, latency_s=LATENCY, reply=REPLY
    ).start()


def stream_run(kind: str, args: argparse.Namespace) -> RunResult:
    """Streamed calls with cuts mid-way; success = the caller got exactly the whole reply."""
    reset_breakers()
    fake = start_server(STREAM_MIX, args.seed)
    try:
        if kind == "sdk":
            import openai

            sdk = openai.OpenAI(base_url=fake.base_url, api_key="sk-bench")
            name = "openai SDK (defaults), stream=True"

            def call() -> object:
                pieces = []
                for chunk in sdk.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": PROMPT}],
                    max_tokens=200,
                    stream=True,
                ):
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                if "".join(pieces) != REPLY:
                    raise AssertionError("incomplete or repeated text")
                return pieces

        else:
            client = ResilientChatClient(
                endpoints=[fake.base_url], model=MODEL, policy=ResiliencePolicy(qps=0)
            )
            request = ChatRequest(messages=(ChatMessage("user", PROMPT),), max_tokens=200)
            name = "narrate ResilientChatClient.stream"

            def call() -> object:
                pieces: list[str] = []
                client.stream(request, on_delta=pieces.append)
                if "".join(pieces) != REPLY:
                    raise AssertionError("incomplete or repeated text")
                return pieces

        ok, latencies = run_calls(name, call, args.n, args.threads)
        return RunResult(name, args.n, ok, latencies, len(fake.requests))
    finally:
        fake.stop()


def chaos_run(kind: str, args: argparse.Namespace) -> RunResult:
    """N calls by one client against fresh fault servers with the seeded mix."""
    reset_breakers()
    servers = [start_server(MIX, args.seed)]
    try:
        if kind == "sdk":
            name, call = "openai SDK (defaults)", sdk_call(servers[0].base_url)
        elif kind == "sdk-timeout":
            name = f"openai SDK (defaults, timeout={args.timeout:g} s)"
            call = sdk_call(servers[0].base_url, args.timeout)
        elif kind == "narrate":
            name = "narrate ResilientChatClient"
            call = narrate_call([servers[0].base_url], args.timeout)
        else:
            servers.append(start_server(MIX, args.seed + 1))
            name = "narrate + backup region"
            call = narrate_call([s.base_url for s in servers], args.timeout)
        ok, latencies = run_calls(name, call, args.n, args.threads)
        return RunResult(name, args.n, ok, latencies, sum(len(s.requests) for s in servers))
    finally:
        for server in servers:
            server.stop()


def quota_run(kind: str, calls: int) -> tuple[str, float]:
    """Requests sent per call when the account is out of credit (insufficient_quota)."""
    with FakeLLMServer(default="insufficient_quota") as fake:
        call = sdk_call(fake.base_url) if kind == "sdk" else narrate_call([fake.base_url], 5)
        for _ in range(calls):
            with contextlib.suppress(Exception):
                call()
        name = "openai SDK (defaults)" if kind == "sdk" else "narrate ResilientChatClient"
        return name, len(fake.requests) / calls


def print_header() -> None:
    """The header of a results table."""
    print("| client | success | p50 latency | p99 latency | requests sent | requests/call |")
    print("|---|---|---|---|---|---|")


def print_row(r: RunResult) -> None:
    """One client's results as a table row."""
    print(
        f"| {r.name} | {r.ok}/{r.calls} ({r.success_rate:.1%}) | {r.percentile(50):.3f} s "
        f"| {r.percentile(99):.2f} s | {r.requests} | {r.requests / r.calls:.2f} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the chaos workload through every client and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="calls per client")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1.5, help="narrate's request timeout")
    parser.add_argument("--quota-calls", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="show retry/failover log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    mix = ", ".join(f"{k} {v:.0%}" for k, v in MIX.items())
    print(f"N={args.n} calls per client, {args.threads} threads, seed {args.seed}; mix: {mix}\n")
    started = time.perf_counter()
    print_header()
    for kind in ("sdk", "sdk-timeout", "narrate", "narrate+backup"):
        print_row(chaos_run(kind, args))
    mix = ", ".join(f"{k} {v:.0%}" for k, v in STREAM_MIX.items())
    print(f"\nstreamed, mix: {mix}; success = the deltas concatenate to exactly the reply\n")
    print_header()
    for kind in ("sdk", "narrate"):
        print_row(stream_run(kind, args))
    print("\ninsufficient_quota (out of credit: no retry can succeed)\n")
    print("| client | requests sent per call |")
    print("|---|---|")
    for kind in ("sdk", "narrate"):
        name, per_call = quota_run(kind, args.quota_calls)
        print(f"| {name} | {per_call:g} |", flush=True)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
