"""One rate limit for every worker: 3 processes share a 6 requests/s budget through Redis.

Three worker processes, each with its own ``ResilientChatClient``, send chat calls as fast
as their limiter lets them to ONE loopback fake server, which records when each request
arrives. Two runs, measured in the same session:

- ``per process`` (the baseline, no Redis): each process has its own token bucket of 6/s,
  so together they send ~3 x 6 = 18/s, three times the account's limit.
- ``shared (Redis)``: the bucket lives in a real redis-server (an atomic Lua script,
  ``RedisTokenBucket``), so the three together keep 6/s.

Reported from the server's arrival times: the most requests in any 1-second window
(allowed: burst + qps) and the rate after the initial burst (target: 6/s within 5%).

    .venv/bin/python -m bench.shared_rate_limit [--qps 6 --burst 3 --per-worker 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.token_bucket import achieved
from tests.support.fake_llm import FakeLLMServer
from tests.support.redis_server import RedisServer

WORKERS = 3


def worker(args: argparse.Namespace) -> None:
    """One worker process: wait for the common start time, then send ``per_worker`` calls."""
    import redis

    from adapters.llm.chat.policy import ResiliencePolicy
    from adapters.llm.chat.ratelimit import RedisTokenBucket
    from adapters.llm.chat.resilient import ResilientChatClient
    from adapters.llm.chat.types import ChatMessage, ChatRequest

    limiter = None
    if args.redis:
        bucket = RedisTokenBucket(
            redis.Redis.from_url(args.redis), "narrate:bench:bucket", args.qps, args.burst
        )
        limiter = lambda model: bucket  # noqa: E731
    client = ResilientChatClient(
        endpoints=[args.base_url],
        policy=ResiliencePolicy(qps=args.qps, burst=args.burst, deadline_s=600),
        limiter=limiter,
    )
    request = ChatRequest(messages=(ChatMessage("user", "count me"),), max_tokens=8)
    time.sleep(max(0.0, args.start - time.time()))
    with client:
        for _ in range(args.per_worker):
            client.complete(request)


def run(server: FakeLLMServer, args: argparse.Namespace, redis_url: str | None) -> list[float]:
    """Start the workers at one moment; return the server's arrival times."""
    server.clear()
    start = time.time() + 4.0  # every process imported and ready by then
    command = [sys.executable, "-m", "bench.shared_rate_limit", "--worker",
               "--base-url", server.base_url, "--qps", str(args.qps), "--burst", str(args.burst),
               "--per-worker", str(args.per_worker), "--start", str(start)]  # fmt: skip
    if redis_url:
        command += ["--redis", redis_url]
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen(command, cwd=root) for _ in range(WORKERS)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a worker failed")
    return [r.time for r in server.requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qps", type=float, default=6.0)
    parser.add_argument("--burst", type=int, default=3)
    parser.add_argument("--per-worker", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    allowed = args.burst + args.qps
    print(f"{WORKERS} processes x {args.per_worker} calls, limit {args.qps:g}/s, "
          f"burst {args.burst} (allowed in any 1 s: {allowed:g})")  # fmt: skip
    print(f"{'limiter':<16} {'requests':>8} {'max in 1 s':>10} {'rate/s':>8} {'vs limit':>9}")
    results: dict[str, float] = {}
    with FakeLLMServer() as server, RedisServer() as redis_server:
        for name, url in (("per process", None), ("shared (Redis)", redis_server.url)):
            times = run(server, args, url)
            burst = args.burst * (WORKERS if url is None else 1)
            rate, window = achieved(times, burst)
            results[name] = rate
            print(f"{name:<16} {len(times):>8} {window:>10} {rate:>8.2f} "
                  f"{rate / args.qps:>8.2f}x")  # fmt: skip
    shared = results["shared (Redis)"]
    print(
        f"shared rate within {abs(shared - args.qps) / args.qps:.1%} of {args.qps:g}/s; "
        f"per-process limits together sent {results['per process'] / shared:.2f}x as much"
    )


if __name__ == "__main__":
    main()
