"""Tests for narrate.ops.cache: keys, SQLite and a real redis-server, graceful degradation."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.errors import ConfigError
from adapters.llm.chat.types import ChatMessage
from narrate.config.settings import CacheSettings
from narrate.ops.cache import (
    NullCache,
    RedisCache,
    ResponseCache,
    SQLiteCache,
    cache_key,
    open_cache,
)
from tests.support.redis_server import RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
MESSAGES = [
    {"role": "system", "content": "Describe the image."},
    {"role": "user", "content": [{"type": "text", "text": "OCR: 欢迎光临"}]},
]
PARAMS = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 400}
RESPONSE = {"text": "一张收据。A receipt.", "usage": {"total_tokens": 42}, "finish_reason": "stop"}


class FakeClock:
    """A settable ``time.time`` for the SQLite cache."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- keys ------------------------------------------------------------------------------


def test_key_ignores_endpoint_and_key_but_not_sampling() -> None:
    base = cache_key("qwen3-max", MESSAGES, PARAMS)
    transport = {"api_key": "sk-one", "base_url": "https://a/v1", "timeout": 5, "stream": True}
    assert cache_key("qwen3-max", MESSAGES, PARAMS | transport) == base
    assert cache_key("qwen3-max", MESSAGES, dict(reversed(PARAMS.items()))) == base
    as_objects = [ChatMessage(m["role"], m["content"]) for m in MESSAGES]  # type: ignore[arg-type]
    assert cache_key("qwen3-max", as_objects, PARAMS) == base
    different = {
        cache_key("qwen3-max", MESSAGES, PARAMS | {"temperature": 0.7}),
        cache_key("qwen3-max", MESSAGES, PARAMS | {"max_tokens": 401}),
        cache_key("qwen3-vl-plus", MESSAGES, PARAMS),
        cache_key("qwen3-max", MESSAGES[:1], PARAMS),
        cache_key("qwen3-max", MESSAGES, {}),
    }
    assert base not in different and len(different) == 5
    assert base.startswith("narrate:llm:v1:") and len(base) == len("narrate:llm:v1:") + 64


# --- the contract every backend meets --------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResponseCache]:
    """Each real backend in turn."""
    if request.param == "sqlite":
        backend: SQLiteCache | RedisCache = SQLiteCache(tmp_path / "c.sqlite3")
    else:
        backend = RedisCache(request.getfixturevalue("redis_url"))
    yield backend
    backend.close()


def test_contract_hit_miss_and_stats(cache: ResponseCache) -> None:
    assert isinstance(cache, ResponseCache)
    key = cache_key("qwen3-max", MESSAGES, PARAMS)
    assert cache.get(key) is None
    cache.set(key, RESPONSE, ttl_s=60)
    assert cache.get(key) == RESPONSE
    assert cache.get(cache_key("qwen3-max", MESSAGES, {})) is None
    cache.set(key, RESPONSE | {"text": "newer"}, ttl_s=60)
    assert cache.get(key)["text"] == "newer"  # type: ignore[index]
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.sets, stats.errors) == (2, 2, 2, 0)
    cache.clear()
    assert cache.get(key) is None


def test_contract_entries_expire(cache: ResponseCache) -> None:
    key = cache_key("qwen3-max", MESSAGES, PARAMS)
    cache.set(key, RESPONSE, ttl_s=0.3)
    cache.set("kept", {"n": 1}, ttl_s=60)
    assert cache.get(key) == RESPONSE
    time.sleep(0.5)  # correctness only: the entry is gone after its TTL
    assert cache.get(key) is None
    assert cache.get("kept") == {"n": 1}


def test_contract_rejects_non_dict_values(cache: ResponseCache) -> None:
    with pytest.raises(TypeError, match="dicts"):
        cache.set("k", ["not", "a", "dict"], ttl_s=1)  # type: ignore[arg-type]


# --- SQLite ----------------------------------------------------------------------------


def test_sqlite_expiry_by_stored_time(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = SQLiteCache(tmp_path / "c.sqlite3", clock=clock)
    cache.set("k", RESPONSE, ttl_s=300)
    clock.now += 299.9
    assert cache.get("k") == RESPONSE
    clock.now += 0.2
    assert cache.get("k") is None
    # An expired row is gone from the file, not just hidden.
    reopened = SQLiteCache(tmp_path / "c.sqlite3", clock=FakeClock())
    assert reopened.get("k") is None


def test_sqlite_threads_share_one_file(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite3")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"{n}-{i}", {"n": n, "i": i}, ttl_s=60)
                assert cache.get(f"{n}-{i}") == {"n": n, "i": i}
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.get("5-49") == {"n": 5, "i": 49}
    assert cache.stats.sets == 300 and cache.stats.errors == 0
    cache.close()


def test_sqlite_works_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    cache = SQLiteCache(path)
    cache.set("from-parent", {"who": "parent"}, ttl_s=60)
    script = (
        "import json, sys\n"
        "from narrate.ops.cache import SQLiteCache\n"
        "c = SQLiteCache(sys.argv[1])\n"
        "print(json.dumps(c.get('from-parent')))\n"
        "c.set('from-child', {'who': 'child'}, ttl_s=60)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout) == {"who": "parent"}
    assert cache.get("from-child") == {"who": "child"}


def test_open_cache_falls_back_to_null_when_the_file_cannot_be_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="narrate.ops.cache"):
        cache = open_cache(CacheSettings(backend="sqlite", path=blocker / "c.sqlite3"))
    assert isinstance(cache, NullCache)
    assert "caching off" in caplog.text
    cache.set("k", RESPONSE, ttl_s=1)
    assert cache.get("k") is None


# --- Redis -----------------------------------------------------------------------------


def test_redis_clear_leaves_other_keys(redis_url: str) -> None:
    import redis

    cache = RedisCache(redis_url)
    cache.set("a", RESPONSE, ttl_s=60)
    client = redis.Redis.from_url(redis_url)
    client.set("someone-else", b"1")
    assert client.pttl("narrate:cache:a") > 0  # stored with an expiry (SET ... PX)
    cache.clear()
    assert cache.get("a") is None
    assert client.get("someone-else") == b"1"
    client.close()


def test_redis_down_is_a_miss_without_exception(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5)
    with caplog.at_level(logging.WARNING, logger="narrate.ops.cache"):
        assert cache.get("k") is None
        cache.set("k", RESPONSE, ttl_s=60)
        assert cache.get("k") is None
    assert cache.stats.errors == 1  # later calls skip Redis during the retry interval
    assert cache.stats.misses == 2
    assert caplog.text.count("caching off for") == 1


def test_redis_going_away_mid_run(redis_server: RedisServer) -> None:
    with RedisServer() as own:
        cache = RedisCache(own.url, socket_timeout_s=0.5, retry_interval_s=0)
        cache.set("k", RESPONSE, ttl_s=60)
        assert cache.get("k") == RESPONSE
    assert cache.get("k") is None  # server stopped: a miss, no exception
    cache.set("k", RESPONSE, ttl_s=60)
    assert cache.stats.errors == 2 and cache.stats.hits == 1


# --- settings --------------------------------------------------------------------------


def test_open_cache_picks_the_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("NARRATE_CACHE_BACKEND", raising=False)  # the suite turns it off
    monkeypatch.setenv("NARRATE_CACHE_PATH", str(tmp_path / "env.sqlite3"))
    settings = CacheSettings()
    assert settings.ttl_s == 300 and settings.resolved_backend == "sqlite"
    cache = open_cache(settings)
    assert isinstance(cache, SQLiteCache) and cache.path == tmp_path / "env.sqlite3"

    monkeypatch.setenv("REDIS_URL", redis_url)
    settings = CacheSettings()
    assert settings.resolved_backend == "redis"
    cache = open_cache(settings)
    assert isinstance(cache, RedisCache)
    cache.set("via-settings", RESPONSE, ttl_s=5)
    assert cache.get("via-settings") == RESPONSE

    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "off")
    assert isinstance(open_cache(CacheSettings()), NullCache)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        open_cache(CacheSettings(backend="redis", redis_url=None))


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NARRATE_CACHE_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert CacheSettings().path == tmp_path / "narrate" / "responses.sqlite3"
