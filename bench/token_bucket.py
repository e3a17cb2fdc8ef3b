"""Token-bucket benchmark: configured vs achieved QPS when a burst of work arrives at once.

For each (qps, burst), many threads (and, in a second pass, asyncio tasks) all want to go at
the same moment. Reported: the achieved rate after the burst, and the most acquisitions seen
in any 1-second window against the allowed ``burst + qps``. The last rows send real chat
calls through ``ResilientChatClient`` to a loopback fake server and measure the rate from the
server's arrival times.

    .venv/bin/python -m bench.token_bucket
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.ratelimit import TokenBucket, reset_buckets
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import ChatMessage, ChatRequest
from tests.support.fake_llm import FakeLLMServer


def achieved(times: list[float], burst: int) -> tuple[float, int]:
    """(rate after the burst, most events in any 1 s window)."""
    times = sorted(times)
    after = times[burst:] if len(times) > burst + 1 else times
    span = after[-1] - times[0] if len(after) > 1 else 0.0
    rate = (len(after)) / span if span > 0 else float("inf")
    window = max(bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times))
    return rate, window


def threaded(qps: float, burst: int, total: int, threads: int) -> list[float]:
    """``total`` acquisitions from ``threads`` threads; their completion times."""
    bucket = TokenBucket(qps, burst)
    times: list[float] = []
    lock = threading.Lock()
    per_thread = total // threads

    def work() -> None:
        for _ in range(per_thread):
            bucket.acquire()
            with lock:
                times.append(time.monotonic())

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return times


def with_asyncio(qps: float, burst: int, total: int) -> list[float]:
    """``total`` acquisitions from as many asyncio tasks; their completion times."""
    bucket = TokenBucket(qps, burst)
    times: list[float] = []

    async def one() -> None:
        await bucket.acquire_async()
        times.append(time.monotonic())

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(total)))

    asyncio.run(main())
    return times


def through_client(qps: float, burst: int, total: int, threads: int) -> list[float]:
    """``total`` chat calls through ResilientChatClient; server arrival times."""
    reset_buckets()
    request = ChatRequest(messages=(ChatMessage("user", "hello"),), max_tokens=20)
    with FakeLLMServer() as server:
        client = ResilientChatClient(
            endpoints=[server.base_url], policy=ResiliencePolicy(qps=qps, burst=burst)
        )
        per_thread = total // threads

        def work() -> None:
            for _ in range(per_thread):
                client.complete(request)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        client.close()
        return [r.time for r in server.requests]


def main(argv: list[str] | None = None) -> None:
    """Print a Markdown table of configured vs achieved rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="target length of each run")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)

    print(
        "| caller | configured QPS | burst | acquisitions | achieved QPS after burst "
        "| max in any 1 s (allowed burst+QPS) |"
    )
    print("|---|---|---|---|---|---|")
    for qps, burst in ((5, 5), (20, 5), (50, 10), (200, 20)):
        total = int(burst + qps * args.seconds)
        total -= total % args.threads
        runs = (
            (f"{args.threads} threads", threaded(qps, burst, total, args.threads)),
            ("asyncio tasks", with_asyncio(qps, burst, total)),
        )
        for caller, times in runs:
            rate, window = achieved(times, burst)
            print(
                f"| {caller} | {qps} | {burst} | {len(times)} | {rate:.2f} "
                f"| {window} ({burst + qps}) |",
                flush=True,
            )
    for qps, burst in ((10, 5), (40, 10)):
        total = int(burst + qps * args.seconds)
        total -= total % 8
        times = through_client(qps, burst, total, 8)
        rate, window = achieved(times, burst)
        print(
            f"| ResilientChatClient, 8 threads, loopback server | {qps} | {burst} | {len(times)} "
            f"| {rate:.2f} | {window} ({burst + qps}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
