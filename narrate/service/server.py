"""Running the application on uvicorn: the bind policy, TLS, and proxy headers.

* Without ``NARRATE_API_JWT_SECRET`` or ``NARRATE_API_JWT_PUBLIC_KEY`` anyone who reaches the
  port could use the API, so the server only listens on loopback then (``check_bind``).
* With ``NARRATE_API_TLS_CERT`` and ``NARRATE_API_TLS_KEY`` the port speaks HTTPS only, and
  TLS older than ``NARRATE_API_TLS_MIN_VERSION`` (default 1.3) fails the handshake.
* uvicorn's own ``X-Forwarded-For`` handling is off: it would believe any local peer, and
  the gate applies ``NARRATE_API_TRUSTED_PROXIES`` instead.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any

from adapters.errors import ConfigError
from narrate.config.settings import APISettings

# Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3 has its own.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine.

    Args:
        host: an address (``127.0.0.1``, ``::1``) or a name (resolved; every address counts).

    Returns:
        True when every address it stands for is a loopback address.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_bind(host: str, api: APISettings) -> None:
    """Refuse to listen beyond loopback when no token is required.

    Args:
        host: the address to listen on.
        api: the ``NARRATE_API_*`` settings.

    Raises:
        ConfigError: ``host`` is not loopback and tokens are off; the message says what to do.
    """
    if api.auth_enabled or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host}: without access tokens anyone who can reach it could "
        "use the API. Set NARRATE_API_JWT_SECRET (HS256) or NARRATE_API_JWT_PUBLIC_KEY "
        "(a PEM file, RS256/ES256), or listen on 127.0.0.1"
    )


def tls_context(api: APISettings) -> ssl.SSLContext | None:
    """The server's TLS context, or None without a certificate.

    Args:
        api: the ``NARRATE_API_*`` settings (certificate, key, minimum version).

    Returns:
        A server ``SSLContext`` with the minimum version set, or None.

    Raises:
        ConfigError: the certificate or key cannot be loaded.
    """
    if api.tls_cert is None or api.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if api.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(TLS12_CIPHERS)
    try:
        context.load_cert_chain(str(api.tls_cert), str(api.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"NARRATE_API_TLS_CERT/NARRATE_API_TLS_KEY: cannot load {api.tls_cert} with "
            f"{api.tls_key} ({exc})"
        ) from exc
    return context


def build_server(app: Any, host: str, port: int, api: APISettings, **options: Any) -> Any:
    """A ``uvicorn.Server`` for ``app`` with narrate's TLS and proxy settings.

    Args:
        app: the ASGI application (``create_app``).
        host: the address to listen on.
        port: the TCP port (0 = any free port).
        api: the ``NARRATE_API_*`` settings.
        **options: more ``uvicorn.Config`` options (``log_level``, ...).

    Returns:
        The server; ``server.run()`` serves until interrupted.

    Raises:
        ConfigError: the bind policy refuses ``host``, or the TLS files are unusable.
    """
    import uvicorn

    check_bind(host, api)
    context = tls_context(api)
    options.setdefault("log_level", "info")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,  # the gate decides whose X-Forwarded-For to believe
        server_header=False,
        timeout_graceful_shutdown=60,
        **options,
    )
    config.load()
    config.ssl = context  # ours, with the minimum version uvicorn has no option for
    return uvicorn.Server(config)
