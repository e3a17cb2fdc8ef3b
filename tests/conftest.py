"""Test-session set-up shared by the whole suite.

The environment is fixed before anything imports Prefect: each session gets its own
PREFECT_HOME (cached task results would otherwise leak between sessions), no telemetry,
and no NARRATE_/DASHSCOPE_ variables from the developer's shell.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

for _name in list(os.environ):
    if _name.startswith(("NARRATE_", "DASHSCOPE_", "PREFECT_")):
        del os.environ[_name]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="narrate-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = "narrate"  # narrate's warnings reach run logs
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"  # ... outside runs: not
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# The LLM response cache is off unless a test turns it on (a hit would hide the requests a
# test counts); it and the audit log write to the session's own folders.
os.environ["NARRATE_CACHE_BACKEND"] = "off"
os.environ["NARRATE_CACHE_PATH"] = str(_SESSION_HOME / "cache" / "responses.sqlite3")
os.environ["NARRATE_AUDIT_DIR"] = str(_SESSION_HOME / "audit")
for _name in ("REDIS_URL",):
    os.environ.pop(_name, None)

pytest_plugins = ("tests.support.fixtures", "tests.support.redis_fixtures")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (15-20 s to start; start it once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the offline describer for the test."""
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
