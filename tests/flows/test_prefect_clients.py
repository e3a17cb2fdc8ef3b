"""``flows._prefect_clients``: Prefect's API clients share one TLS context, and still work."""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest

from flows import _prefect_clients
from flows._prefect_clients import prefect_tls_context, share_tls_context


@pytest.fixture
def context_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``ssl.create_default_context`` call from now on (narrate's and Prefect's)."""
    calls: list[Any] = []
    real = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        calls.append(kwargs.get("cafile"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    monkeypatch.setattr(_prefect_clients, "_built", {})
    return calls


def test_clients_share_one_context_and_talk_to_the_server(
    prefect_harness: None, context_builds: list[Any]
) -> None:
    from prefect.client.orchestration import get_client

    share_tls_context()
    share_tls_context()  # idempotent: the clients are wrapped once
    answers = []
    for _ in range(5):
        with get_client(sync_client=True) as client:
            answers.append(client.hello().status_code)
    assert answers == [200] * 5  # a real round trip each
    assert len(context_builds) == 1  # Prefect alone built 5: one per client


def test_a_client_given_its_own_verify_keeps_it(
    prefect_harness: None, context_builds: list[Any]
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    share_tls_context()
    own = ssl.create_default_context()
    context_builds.clear()
    client = SyncPrefectClient("http://127.0.0.1:9/api", httpx_settings={"verify": own})
    client._client.close()
    assert context_builds == []  # neither narrate's nor Prefect's: the caller's context


def test_the_context_follows_prefects_tls_settings(
    tmp_path: Path, context_builds: list[Any]
) -> None:
    import certifi
    from prefect.settings import (
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        temporary_settings,
    )

    default = prefect_tls_context()
    assert prefect_tls_context() is default
    prefects_own = PREFECT_API_SSL_CERT_FILE.value() or certifi.where()  # SSL_CERT_FILE too
    assert default.verify_mode == ssl.CERT_REQUIRED and context_builds == [prefects_own]

    bundle = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), bundle)
    with temporary_settings(updates={PREFECT_API_SSL_CERT_FILE: str(bundle)}):
        own_file = prefect_tls_context()
        assert own_file is not default and context_builds[-1] == str(bundle)
        assert prefect_tls_context() is own_file
        os.utime(bundle, ns=(1, 1))  # the file changed: loaded again
        assert prefect_tls_context() is not own_file
    with temporary_settings(updates={PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        insecure = prefect_tls_context()
        assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
