"""The wire: TLS with a certificate made in the test (trustme), 1.3 by default, 1.2 refused."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from tests.narrate.service.conftest import SAMPLES, SECRET, bearer, make_token

trustme = pytest.importorskip("trustme")


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
