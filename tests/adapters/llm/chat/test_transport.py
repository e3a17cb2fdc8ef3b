"""The pooled client: TLS verification, TLS minimum version, CA bundle, HTTP/2.

Every certificate is made in the test by trustme (a CA and a server certificate for
127.0.0.1); the servers are real: the fault server behind Python's TLS, and hypercorn
speaking HTTP/2 through ALPN.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from adapters.llm.chat.errors import ChatPermanentError
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.transport import HoldsApiKey, make_http_client, tls_context
from adapters.llm.chat.types import ChatMessage, ChatRequest
from tests.support.fake_llm import FakeLLMServer
from tests.support.h2_server import H2ChatServer

REQUEST = ChatRequest(messages=(ChatMessage("user", "Describe the poster"),))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def tls_server(ca: trustme.CA, *, max_version: ssl.TLSVersion | None = None) -> FakeLLMServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if max_version is not None:
        context.maximum_version = max_version
    return FakeLLMServer(ssl_context=context)


def client(server: FakeLLMServer, **transport: object) -> ResilientChatClient:
    return ResilientChatClient(
        endpoints=[server.base_url],
        policy=ResiliencePolicy(qps=0, timeout_s=5, retry_base_s=0.01),
        client=make_http_client(timeout_s=5, **transport),  # type: ignore[arg-type]
    )


@pytest.fixture
def tls12_only(ca: trustme.CA) -> Iterator[FakeLLMServer]:
    with tls_server(ca, max_version=ssl.TLSVersion.TLSv1_2) as server:
        yield server


def test_a_private_ca_is_trusted_through_the_bundle_setting(ca: trustme.CA, ca_file: Path) -> None:
    with tls_server(ca) as server, client(server, ca_bundle=ca_file) as chat:
        result = chat.complete(REQUEST)
    assert result.text.startswith("This is a fake answer") and server.requests


def test_tls_13_required_refuses_a_tls_12_server_and_says_so(
    tls12_only: FakeLLMServer, ca_file: Path
) -> None:
    with client(tls12_only, ca_bundle=ca_file, tls_min_version="1.2") as chat:
        assert chat.complete(REQUEST).text  # 1.2 allowed: fine

    chat = client(tls12_only, ca_bundle=ca_file, tls_min_version="1.3")
    with chat, pytest.raises(ChatPermanentError) as caught:
        chat.complete(REQUEST)
    message = str(caught.value)
    assert "TLS version" in message and "NARRATE_LLM_TLS_MIN_VERSION" in message
    assert "127.0.0.1" in message and caught.value.attempts == 1  # not retried


def test_an_untrusted_certificate_is_refused_naming_the_host(ca: trustme.CA) -> None:
    server = tls_server(ca)
    with server, client(server) as chat, pytest.raises(ChatPermanentError) as caught:
        chat.complete(REQUEST)  # the system's store does not hold our CA
    message = str(caught.value)
    assert "certificate of 127.0.0.1" in message and "NARRATE_LLM_CA_BUNDLE" in message
    assert server.requests == []  # nothing was sent over the untrusted connection


def test_tls_context_checks_its_settings(tmp_path: Path) -> None:
    assert tls_context(min_version="1.3").minimum_version == ssl.TLSVersion.TLSv1_3
    assert tls_context().verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match=r"1\.2, 1\.3"):
        tls_context(min_version="1.1")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        tls_context(ca_bundle=tmp_path / "missing.pem")


@pytest.mark.parametrize("http2", [True, False])
def test_http2_is_used_when_the_server_offers_it(tmp_path: Path, http2: bool) -> None:
    with H2ChatServer(tmp_path, reply="Two words.") as server:
        chat = ResilientChatClient(
            endpoints=[server.base_url],
            policy=ResiliencePolicy(qps=0, timeout_s=5),
            client=make_http_client(timeout_s=5, http2=http2, ca_bundle=server.ca_path),
        )
        with chat:
            plain = chat.complete(REQUEST)
            streamed = chat.stream(REQUEST)
    version = "HTTP/2" if http2 else "HTTP/1.1"
    assert plain.http_version == streamed.http_version == version
    assert plain.text == "Two words." and streamed.text == "Two words. "
    assert [r["http_version"] for r in server.requests] == (["2", "2"] if http2 else ["1.1", "1.1"])
    assert server.connections == 1  # one pooled connection for both calls


class _Keyed(HoldsApiKey):
    _repr_fields = ("model",)

    def __init__(self, api_key: str | None) -> None:
        self.model = "qwen3-max"
        self._hold_api_key(api_key)


@pytest.mark.parametrize(
    ("api_key", "shown"), [("sk-canary-0123456789abcdef", "set"), ("", "none"), (None, "none")]
)
def test_the_repr_says_whether_a_key_is_set_never_the_key(api_key: str | None, shown: str) -> None:
    keyed = _Keyed(api_key)
    assert repr(keyed) == f"_Keyed(model='qwen3-max', api_key=<{shown}>)"
    assert (keyed._api_key is None) == (shown == "none")
