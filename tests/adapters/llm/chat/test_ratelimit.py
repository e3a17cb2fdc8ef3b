"""The token bucket: never more than burst + qps * t acquisitions (threads, asyncio, processes)."""

from __future__ import annotations

import asyncio
import bisect
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.llm.chat.errors import LLMExhaustedError
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.ratelimit import TokenBucket, reset_buckets, shared_bucket
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import ChatMessage, ChatRequest
from tests.support.fake_llm import FakeLLMServer

TOLERANCE = 1.0  # one token of slack for clock granularity between reserve and record


@pytest.fixture(autouse=True)
def _fresh_buckets() -> Iterator[None]:
    reset_buckets()
    yield
    reset_buckets()


def worst_excess(times: list[float], rate: float, burst: int) -> float:
    """Max over all windows [t_i, t_j] of count - (burst + rate * (t_j - t_i)); <= 0 is good."""
    times = sorted(times)
    worst = -float("inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            count = j - i + 1
            worst = max(worst, count - (burst + rate * (times[j] - times[i])))
    return worst


def test_reservations_follow_rate_and_burst_on_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=2, burst=2, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.5, 1.0, 1.5])
    now[0] = 10.0  # a long pause refills only up to the burst
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0, 0, 0.5])


def test_a_wait_longer_than_max_wait_takes_no_token() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=1, burst=1, clock=lambda: now[0])
    assert bucket.reserve() == 0
    assert bucket.reserve(max_wait_s=0.5) is None
    assert bucket.acquire(max_wait_s=0.5) is False
    assert bucket.reserve(max_wait_s=1.0) == pytest.approx(1.0)  # nothing was taken before


def test_zero_rate_means_unlimited() -> None:
    bucket = TokenBucket(qps=0, burst=1)
    started = time.monotonic()
    assert all(bucket.acquire() for _ in range(1000))
    assert bucket.unlimited and time.monotonic() - started < 1


def test_threads_sharing_one_bucket_never_exceed_the_rate() -> None:
    rate, burst = 25.0, 5
    bucket = shared_bucket(("http://x/v1", "qwen3-max"), rate, burst)
    assert shared_bucket(("http://x/v1", "qwen3-max"), rate, burst) is bucket
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(6):
            bucket.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(times) == 48
    assert worst_excess(times, rate, burst) <= TOLERANCE
    # and it is not trivially slow: the limit is reached, roughly
    assert max(times) - min(times) >= (48 - burst) / rate * 0.9


def test_asyncio_tasks_and_threads_share_the_same_bucket() -> None:
    rate, burst = 20.0, 3
    bucket = shared_bucket("mixed", rate, burst)
    times: list[float] = []
    lock = threading.Lock()

    async def one() -> None:
        assert await shared_bucket("mixed", rate, burst).acquire_async()
        with lock:
            times.append(time.monotonic())

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(15)))

    def thread_worker() -> None:
        for _ in range(5):
            bucket.acquire()
            with lock:
                times.append(time.monotonic())

    thread = threading.Thread(target=thread_worker)
    thread.start()
    asyncio.run(many())
    thread.join()

    assert len(times) == 20
    assert worst_excess(times, rate, burst) <= TOLERANCE


def test_clients_with_the_same_endpoints_and_model_share_one_bucket(
    fake_llm: FakeLLMServer,
) -> None:
    request = ChatRequest(messages=(ChatMessage("user", "hello there"),))
    clients = [
        ResilientChatClient(
            endpoints=[fake_llm.base_url], policy=ResiliencePolicy(qps=10, burst=2, timeout_s=5)
        )
        for _ in range(3)
    ]
    assert clients[0].limiter("qwen3-max") is clients[2].limiter("qwen3-max")
    assert clients[0].limiter("qwen3-max") is not clients[0].limiter("qwen-plus")

    threads = [
        threading.Thread(target=lambda c=c: [c.complete(request) for _ in range(4)])
        for c in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()

    arrivals = [r.time for r in fake_llm.requests]
    assert len(arrivals) == 12
    assert worst_excess(arrivals, 10, 2) <= TOLERANCE


def test_a_rate_limit_wait_past_the_deadline_fails_without_sending(
    fake_llm: FakeLLMServer,
) -> None:
    request = ChatRequest(messages=(ChatMessage("user", "hello there"),))
    client = ResilientChatClient(
        endpoints=[fake_llm.base_url],
        policy=ResiliencePolicy(qps=0.2, burst=1, deadline_s=1.0, timeout_s=5),
    )
    with client:
        assert "hello there" in client.complete(request).text
        with pytest.raises(LLMExhaustedError, match="rate limit"):
            client.complete(request)  # the next token comes in 5 s, after the deadline

    assert len(fake_llm.requests) == 1


_WORKER = """
import sys, time, redis
from adapters.llm.chat.ratelimit import RedisTokenBucket
url, start, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
bucket = RedisTokenBucket(redis.Redis.from_url(url), "narrate:test:bucket", 10, 2)
time.sleep(max(0.0, start - time.time()))
for _ in range(n):
    bucket.acquire()
    print(time.time(), flush=True)
"""


@pytest.mark.integration
def test_a_redis_bucket_is_one_limit_for_several_processes(redis_url: str) -> None:
    """3 processes x 6 acquisitions at 10/s, burst 2, through one real redis-server."""
    start = time.time() + 3.0  # every process imported and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, str(start), "6"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])},
        )
        for _ in range(3)
    ]
    times = sorted(float(line) for p in procs for line in p.communicate(timeout=60)[0].split())

    assert len(times) == 18 and all(p.returncode == 0 for p in procs)
    window = max(bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times))
    assert window <= 2 + 10 + 1  # burst + rate in any second (+1: the window's edge)
    assert times[-1] - times[0] >= (18 - 2) / 10 * 0.9  # not 3 x 10/s: one shared limit


def test_redis_bucket_refuses_a_wait_beyond_max_wait(redis_url: str) -> None:
    import redis

    from adapters.llm.chat.ratelimit import RedisTokenBucket

    bucket = RedisTokenBucket(redis.Redis.from_url(redis_url), "narrate:test:b2", 1, 1)
    assert bucket.reserve() == 0.0
    assert bucket.reserve(max_wait_s=0.1) is None  # nothing taken
    wait = bucket.reserve(max_wait_s=5)
    assert wait is not None and 0.8 < wait <= 1.0
