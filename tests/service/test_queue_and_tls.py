"""Peaks and the wire: the bounded queue (503 + Retry-After) against a slow LLM server on
loopback, and TLS with a certificate made in the test (trustme)."""

from __future__ import annotations

import json
import socket
import ssl
import threading

import httpx
import pytest

from tests.service.conftest import SAMPLES, SECRET, bearer, make_token

trustme = pytest.importorskip("trustme")

API_KEY = "sk-test-service-0123456789abcdef"


def _llm_env(fake_llm) -> dict[str, str]:
    return {
        "NARRATE_LLM_BACKEND": "openai",
        "NARRATE_LLM_BASE_URL": fake_llm.base_url,
        "NARRATE_LLM_API_KEY": API_KEY,
        "NARRATE_LLM_MAX_RETRIES": "0",
    }


def test_queue_full_is_503_and_every_accepted_request_completes(serve_api, fake_llm, tmp_path):
    fake_llm.latency = 1.5
    fake_llm.reply = "A cafe receipt; the total is 7.20."
    audit_dir = tmp_path / "audit"
    served = serve_api(
        {
            **_llm_env(fake_llm),
            "NARRATE_API_CONCURRENCY": "1",
            "NARRATE_API_MAX_QUEUE": "1",
            "NARRATE_AUDIT_DIR": str(audit_dir),
        }
    )
    png = (SAMPLES / "receipt_en.png").read_bytes()
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", png)}, timeout=120
        )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 503]
    assert len(accepted) + len(busy) == 5, [(r.status_code, r.text) for r in responses]
    assert len(accepted) >= 2 and busy  # one running + one waiting; the rest refused
    for response in busy:
        assert int(response.headers["retry-after"]) >= 1
        assert "queue full" in response.json()["detail"]
    for response in accepted:
        assert response.json()["backend"] == "openai"
        assert response.json()["description"] == "A cafe receipt; the total is 7.20."
    # exactly one LLM call per accepted request: nothing lost, nothing run for refused ones
    assert len(fake_llm.requests) == len(accepted)
    assert served.app.state.queue.depth() == (0, 0)
    audit = "".join(p.read_text() for p in audit_dir.glob("*.jsonl"))
    assert API_KEY not in audit
    statuses = [
        json.loads(line)["status"]
        for line in audit.splitlines()
        if json.loads(line).get("extra", {}).get("kind") == "api"
    ]
    assert sorted(statuses) == sorted(r.status_code for r in responses)


def test_llm_failure_is_a_502_with_one_line(serve_api, fake_llm):
    fake_llm.default = "401"
    served = serve_api(_llm_env(fake_llm))
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, timeout=120
        )
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("a backend failed: ") and "\n" not in detail
    assert API_KEY not in response.text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return ca, cert_path, key_path


def _client_context(ca, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if maximum is not None:
        context.maximum_version = maximum
    return context


def test_tls_13_by_default_and_12_refused(serve_api, certificate):
    ca, cert_path, key_path = certificate
    served = serve_api(
        {
            "NARRATE_API_TLS_CERT": str(cert_path),
            "NARRATE_API_TLS_KEY": str(key_path),
            "NARRATE_API_JWT_SECRET": SECRET,
        }
    )
    assert served.url.startswith("https://")
    with httpx.Client(verify=_client_context(ca), timeout=120) as client:
        health = client.get(f"{served.url}/healthz")
        assert health.status_code == 200
        assert health.headers["strict-transport-security"].startswith("max-age=")
        with (SAMPLES / "receipt_en.png").open("rb") as fh:
            response = client.post(
                f"{served.url}/v1/describe",
                files={"image": ("r.png", fh)},
                headers=bearer(make_token()),
            )
        assert response.status_code == 200 and "TOTAL 7.20" in response.json()["ocr_text"]
    with socket.create_connection((served.host, served.port)) as raw:
        context = _client_context(ca)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.3"
    old = _client_context(ca, maximum=ssl.TLSVersion.TLSv1_2)
    # the same client, capped at TLS 1.2, fails the handshake (asyncio's server closes it)
    with pytest.raises(httpx.ConnectError, match="SSL"):
        httpx.get(f"{served.url}/healthz", verify=old)
    with pytest.raises(httpx.TransportError):  # plain HTTP on the HTTPS port gets nothing
        httpx.get(f"http://{served.host}:{served.port}/healthz", timeout=5)


def test_tls_12_allowed_when_configured(serve_api, certificate):
    ca, cert_path, key_path = certificate
    served = serve_api(
        {
            "NARRATE_API_TLS_CERT": str(cert_path),
            "NARRATE_API_TLS_KEY": str(key_path),
            "NARRATE_API_TLS_MIN_VERSION": "1.2",
        }
    )
    old = _client_context(ca, maximum=ssl.TLSVersion.TLSv1_2)
    assert httpx.get(f"{served.url}/healthz", verify=old).status_code == 200
