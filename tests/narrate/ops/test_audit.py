"""Tests for narrate.ops.audit: whole JSON lines under concurrency, daily files, retention."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.llm.base import Usage
from narrate.config.secrets import REDACTED, clear_secrets, register_secret
from narrate.config.settings import AuditSettings
from narrate.ops.audit import (
    AuditLog,
    AuditRecord,
    NullAuditLog,
    messages_sha256,
    open_audit_log,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
CANARY = "canary-audit-K9m8N7b6V5c4"
MESSAGES = [
    {"role": "system", "content": "Describe the image."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "OCR: 欢迎光临"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
]
PAYLOAD = "x" * 10_000  # well over PIPE_BUF: interleaving would show


class Clock:
    """A settable UTC clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def lines(path: Path) -> list[dict]:
    """Every line of a JSONL file, parsed (fails on a torn or interleaved line)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def test_record_fields_and_message_digest(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2026, 11, 27, 8, 30, 15, 123000, tzinfo=dt.UTC))
    audit = AuditLog(tmp_path, clock=clock)
    audit.record(
        request_id="req-1",
        endpoint="https://dashscope.aliyuncs.com/compatible-mode/v1",
        model="qwen3-vl-plus",
        parameters={"temperature": 0.3, "top_p": 0.9, "max_tokens": 400, "stream": False},
        messages=MESSAGES,
        status=200,
        latency_s=1.234567891,
        tokens=Usage(120, 30, 150),
        attempt=1,
        cache_hit=False,
        outcome="ok",
    )
    [entry] = lines(tmp_path / "audit-2026-11-27.jsonl")
    canonical = json.dumps(MESSAGES, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry == {
        "ts": "2026-11-27T08:30:15.123Z",
        "request_id": "req-1",
        "endpoint": "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "model": "qwen3-vl-plus",
        "parameters": {"temperature": 0.3, "top_p": 0.9, "max_tokens": 400, "stream": False},
        "messages_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
        "status": 200,
        "latency_s": 1.234568,
        "tokens": {"prompt": 120, "completion": 30, "total": 150},
        "attempt": 1,
        "cache_hit": False,
        "outcome": "ok",
        "error": None,
    }
    assert "messages" not in entry  # off by default
    assert entry["messages_sha256"] == messages_sha256(MESSAGES)
    assert oct((tmp_path / "audit-2026-11-27.jsonl").stat().st_mode & 0o777) == "0o600"


def test_messages_only_with_opt_in_and_images_shrunk(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path, include_messages=True)
    rec = AuditRecord(request_id="r", messages=MESSAGES, outcome="ok")
    written = audit.record(rec, attempt=2)
    [entry] = lines(next(tmp_path.glob("audit-*.jsonl")))
    assert entry == written
    assert entry["attempt"] == 2
    assert entry["messages"][0] == MESSAGES[0]
    assert entry["messages"][1]["content"][0] == {"type": "text", "text": "OCR: 欢迎光临"}
    url = entry["messages"][1]["content"][1]["image_url"]["url"]
    digest = hashlib.sha256(b"iVBORw0KGgo=").hexdigest()
    assert url == f"data:image/png;sha256={digest};bytes=12"


def test_canary_secret_never_reaches_the_file(tmp_path: Path) -> None:
    register_secret(CANARY)
    audit = AuditLog(tmp_path, include_messages=True)
    audit.record(
        endpoint=f"https://api.example/v1?key={CANARY}",
        messages=[{"role": "user", "content": f"my key is {CANARY}"}],
        status=401,
        error=f"401 Unauthorized: Bearer {CANARY}",
        extra={"headers": {"Authorization": f"Bearer {CANARY}"}},
        outcome="error",
    )
    text = next(tmp_path.glob("audit-*.jsonl")).read_text()
    assert CANARY not in text
    [entry] = lines(next(tmp_path.glob("audit-*.jsonl")))
    assert entry["endpoint"] == f"https://api.example/v1?key={REDACTED}"
    assert entry["messages"][0]["content"] == f"my key is {REDACTED}"
    assert entry["extra"]["headers"]["Authorization"] == f"Bearer {REDACTED}"


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="modle"):
        AuditLog(tmp_path).record(modle="qwen3-max")
    assert list(tmp_path.iterdir()) == []


def test_threads_write_whole_lines(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)

    def write(n: int) -> None:
        for i in range(100):
            audit.record(request_id=f"t{n}-{i}", error=PAYLOAD)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [path] = list(tmp_path.glob("audit-*.jsonl"))
    entries = lines(path)
    ids = [e["request_id"] for e in entries]
    assert len(ids) == 800 and set(ids) == {f"t{n}-{i}" for n in range(8) for i in range(100)}
    assert all(e["error"] == PAYLOAD for e in entries)


@pytest.mark.slow  # three fresh interpreters
def test_processes_write_whole_lines(tmp_path: Path) -> None:
    logs, gate = tmp_path / "logs", tmp_path / "gate"
    gate.mkdir()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from narrate.ops.audit import AuditLog\n"
        "logs, gate, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]\n"
        "audit = AuditLog(logs)\n"
        "(gate / n).touch()\n"
        "deadline = time.monotonic() + 60\n"  # start writing together
        "while len(list(gate.iterdir())) < 3 and time.monotonic() < deadline:\n"
        "    time.sleep(0.005)\n"
        "for i in range(150):\n"
        "    audit.record(request_id=f'p{n}-{i}', error='y' * 10000)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(logs), str(gate), str(n)], cwd=REPO_ROOT
        )
        for n in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    [path] = list(logs.glob("audit-*.jsonl"))
    entries = lines(path)
    ids = [e["request_id"] for e in entries]
    assert len(ids) == 450 and set(ids) == {f"p{n}-{i}" for n in range(3) for i in range(150)}
    assert all(e["error"] == "y" * 10000 for e in entries)


def test_one_file_per_utc_day(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2026, 11, 27, 23, 59, 59, tzinfo=dt.UTC))
    audit = AuditLog(tmp_path, clock=clock)
    audit.record(request_id="late")
    clock.now = dt.datetime(2026, 11, 28, 0, 0, 1, tzinfo=dt.UTC)
    audit.record(request_id="early")
    # 07:00 in Beijing on the 29th is still the 28th in UTC.
    clock.now = dt.datetime(2026, 11, 29, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    audit.record(request_id="beijing")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-2026-11-27.jsonl",
        "audit-2026-11-28.jsonl",
    ]
    assert [e["request_id"] for e in lines(tmp_path / "audit-2026-11-27.jsonl")] == ["late"]
    day2 = lines(tmp_path / "audit-2026-11-28.jsonl")
    assert [e["request_id"] for e in day2] == ["early", "beijing"]
    assert day2[1]["ts"] == "2026-11-28T23:00:00.000Z"


def _touch(directory: Path, day: dt.date) -> Path:
    path = directory / f"audit-{day.isoformat()}.jsonl"
    path.write_text('{"old": true}\n')
    return path


def test_prune_keeps_retention_and_unrelated_files(tmp_path: Path) -> None:
    today = dt.date(2026, 11, 27)
    audit = AuditLog(tmp_path, retention_days=180)
    old = _touch(tmp_path, today - dt.timedelta(days=181))
    older = _touch(tmp_path, today - dt.timedelta(days=400))
    edge = _touch(tmp_path, today - dt.timedelta(days=180))
    recent = _touch(tmp_path, today - dt.timedelta(days=179))
    names = ("notes.txt", "audit-latest.jsonl", "audit-2020-01-01.jsonl.bak")
    names += ("audit-2020-13-01.jsonl",)  # a matching name with an impossible date
    unrelated = [tmp_path / name for name in names]
    for path in unrelated:
        path.write_text("keep me")
    (tmp_path / "audit-2019-01-01.jsonl").mkdir()  # a directory with a matching name

    removed = audit.prune(now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC))
    assert sorted(removed) == sorted([old, older])
    assert not old.exists() and not older.exists()
    assert edge.exists() and recent.exists()
    assert all(p.read_text() == "keep me" for p in unrelated)
    assert (tmp_path / "audit-2019-01-01.jsonl").is_dir()


def test_automatic_prune_runs_once_a_day(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC))
    audit = AuditLog(tmp_path, retention_days=30, clock=clock)
    first = _touch(tmp_path, dt.date(2026, 10, 1))
    audit.record(request_id="a")
    assert not first.exists()  # the first record of the day prunes
    second = _touch(tmp_path, dt.date(2026, 10, 2))
    AuditLog(tmp_path, retention_days=30, clock=clock).record(request_id="b")
    assert second.exists()  # once per day per process, even with a new AuditLog
    clock.now += dt.timedelta(days=1)
    audit.record(request_id="c")
    assert not second.exists()


def test_settings_and_null_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NARRATE_AUDIT_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = AuditSettings()
    assert settings.dir == tmp_path / "data" / "narrate" / "audit"
    assert (settings.retention_days, settings.include_messages, settings.enabled) == (
        180,
        False,
        True,
    )
    monkeypatch.setenv("NARRATE_AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("NARRATE_AUDIT_INCLUDE_MESSAGES", "true")
    log = open_audit_log(AuditSettings())
    assert isinstance(log, AuditLog) and log.include_messages
    log.record(messages=MESSAGES)
    assert "messages" in lines(next((tmp_path / "audit").glob("audit-*.jsonl")))[0]

    monkeypatch.setenv("NARRATE_AUDIT_ENABLED", "false")
    null = open_audit_log(AuditSettings())
    assert isinstance(null, NullAuditLog)
    assert null.record(request_id="x") == {}
    with pytest.raises(TypeError):
        null.record(nonsense=1)
