"""The pooled HTTP client the chat client sends through: HTTP/2, TLS minimum version, CA bundle.

One ``httpx.Client`` per process and settings keeps connections (and HTTP/2 streams) open
across calls. ``http2=True`` offers HTTP/2 through TLS ALPN (with the ``h2`` package) and
falls back to HTTP/1.1 when the server does not take it; plain ``http://`` URLs use
HTTP/1.1. Certificates are always verified, against ``ca_bundle`` when given (a private
gateway's CA), else the system's store; ``tls_min_version`` refuses older protocol versions
(the Qwen3 deployment guidance recommends 1.3).
"""

from __future__ import annotations

import importlib.util
import logging
import ssl
from pathlib import Path
from typing import ClassVar, Literal, Self

import httpx
from pydantic import SecretStr

log = logging.getLogger("narrate.llm")

TlsVersion = Literal["1.2", "1.3"]
_TLS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_context(
    *, min_version: TlsVersion = "1.2", ca_bundle: str | Path | None = None
) -> ssl.SSLContext:
    """A verifying client ``SSLContext`` that refuses TLS below ``min_version``.

    Args:
        min_version: ``"1.2"`` or ``"1.3"``.
        ca_bundle: a PEM file of trusted CA certificates; None uses the system's store.

    Returns:
        The context (hostname checking and certificate verification on).

    Raises:
        ValueError: an unknown ``min_version``.
        FileNotFoundError: ``ca_bundle`` does not exist.
    """
    if min_version not in _TLS:
        raise ValueError(f"TLS minimum version must be one of {', '.join(_TLS)}: {min_version!r}")
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise FileNotFoundError(f"CA bundle not found: {ca_bundle}")
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.minimum_version = _TLS[min_version]
    return context


def h2_available() -> bool:
    """True when the ``h2`` package (httpx's HTTP/2 support) is installed."""
    return importlib.util.find_spec("h2") is not None


def make_http_client(
    *,
    timeout_s: float = 60.0,
    http2: bool = True,
    tls_min_version: TlsVersion = "1.2",
    ca_bundle: str | Path | None = None,
    max_connections: int = 20,
) -> httpx.Client:
    """A pooled ``httpx.Client`` for the chat API.

    Args:
        timeout_s: default seconds per request (each call passes its own too).
        http2: offer HTTP/2 (ALPN); silently HTTP/1.1 when ``h2`` is not installed.
        tls_min_version: the lowest TLS version accepted.
        ca_bundle: PEM file of CAs to trust instead of the system's.
        max_connections: the pool's size.

    Returns:
        The client; the caller closes it.

    Raises:
        ValueError / FileNotFoundError: as ``tls_context``.
    """
    use_h2 = http2 and h2_available()
    if http2 and not use_h2:
        log.info("http2: the h2 package is missing; using HTTP/1.1")
    return httpx.Client(
        timeout=timeout_s,
        http2=use_h2,
        verify=tls_context(min_version=tls_min_version, ca_bundle=ca_bundle),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


class HoldsHttpClient:
    """The ``httpx.Client`` a chat client sends through, and closing it.

    The client given is the caller's to close; one made here is closed by ``close()`` or on
    leaving a ``with`` block.
    """

    _http: httpx.Client
    _owns_http: bool

    def _hold_http(self, client: httpx.Client | None, timeout_s: float) -> None:
        """Use ``client``, or a new ``httpx.Client`` with a ``timeout_s`` second timeout."""
        self._owns_http = client is None
        self._http = client if client is not None else httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HoldsApiKey:
    """The API key a chat client sends, and a repr that says only whether one is set.

    ``__repr__`` shows the attributes named in ``_repr_fields`` and ``api_key=<set>`` or
    ``api_key=<none>``: never the key itself.
    """

    _api_key: SecretStr | None
    _repr_fields: ClassVar[tuple[str, ...]] = ()

    def _hold_api_key(self, api_key: SecretStr | str | None) -> None:
        """Keep ``api_key`` as a ``SecretStr``; an empty one counts as none."""
        if isinstance(api_key, str):
            api_key = SecretStr(api_key)
        self._api_key = api_key if api_key and api_key.get_secret_value() else None

    def __repr__(self) -> str:
        shown = [f"{name}={getattr(self, name)!r}" for name in self._repr_fields]
        shown.append(f"api_key=<{'set' if self._api_key else 'none'}>")
        return f"{type(self).__name__}({', '.join(shown)})"
