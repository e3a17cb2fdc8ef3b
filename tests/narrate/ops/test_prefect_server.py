"""``require_prefect_server`` against real loopback servers: none listening, one not Prefect."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.errors import ConfigError
from narrate.ops.prefect_server import require_prefect_server, resolve_engine
from tests.support.loopback_http import serve
from tests.support.prefect_server import free_port


@pytest.fixture
def not_prefect(tmp_path: Path) -> Iterator[str]:
    """Python's ``http.server`` on a free port: it answers GET /health with 404."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    def handler(*args: object) -> Quiet:
        return Quiet(*args, directory=str(tmp_path))  # type: ignore[arg-type]

    with serve(handler) as port:
        yield f"http://127.0.0.1:{port}"


def test_nothing_listening_names_the_url_and_how_to_start_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(ConfigError) as caught:
        require_prefect_server(url)
    message = str(caught.value)
    assert message.startswith(f"the Prefect server at {url} (PREFECT_API_URL) cannot be reached (")
    assert "prefect server start" in message and "--engine direct" in message
    assert "\n" not in message


def test_a_server_that_is_not_prefects_api_is_an_http_error(not_prefect: str) -> None:
    with pytest.raises(ConfigError, match=r"answered GET /health with HTTP 404: .* end in /api"):
        require_prefect_server(not_prefect)


def test_credentials_in_the_url_are_not_shown() -> None:
    url = f"http://user:s3cret@127.0.0.1:{free_port()}/api"
    with pytest.raises(ConfigError) as caught:
        require_prefect_server(url)
    assert "s3cret" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_the_engine_rule_the_cli_and_the_service_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert resolve_engine("auto") == "direct"
    assert resolve_engine("auto", prefect=True) == "prefect"  # a Dask runner needs Prefect
    assert resolve_engine("direct") == "direct" and resolve_engine("prefect") == "prefect"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert resolve_engine("auto") == "prefect"
    assert resolve_engine("direct") == "direct"
    with pytest.raises(ConfigError, match="unknown engine 'dask': use auto, direct or prefect"):
        resolve_engine("dask")
