"""``narrate serve``: the upload API and the web page on uvicorn (registered by the CLI)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

SERVE_EPILOG = """\
settings (environment):
  NARRATE_API_JWT_SECRET       HS256 secret (>= 32 bytes), or
  NARRATE_API_JWT_PUBLIC_KEY   a PEM public key file (RS256 / ES256)
  NARRATE_API_JWT_AUDIENCE     required `aud`, when set;  NARRATE_API_JWT_ISSUER  required `iss`
  NARRATE_API_ALLOW_IPS        addresses/CIDRs allowed (IPv4, IPv6); empty = all
  NARRATE_API_TRUSTED_PROXIES  proxies whose X-Forwarded-For is believed
  NARRATE_API_MAX_UPLOAD_BYTES largest request body (default 20 MiB)
  NARRATE_API_TLS_CERT / NARRATE_API_TLS_KEY   PEM files: HTTPS only
  NARRATE_API_TLS_MIN_VERSION  1.3 (default) or 1.2
  NARRATE_API_MAX_QUEUE        requests waiting beyond those running (default 32); then 503
  NARRATE_API_CONCURRENCY      requests worked on at once (default 8)
  NARRATE_API_RETENTION_S      seconds results are kept (default 3600)
Without a JWT setting the server only listens on loopback. See README.md, "narrate serve".
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` sub-command to the CLI's sub-parsers.

    Args:
        sub: what ``ArgumentParser.add_subparsers()`` returned.
    """
    serve = sub.add_parser(
        "serve",
        help="serve the upload API (JWT, IP allowlist, TLS) and a web page",
        description="Serve narrate over HTTP: POST an image to /v1/describe or /v1/ask and "
        "get the description and a WAV back; /v1/jobs for clients that poll; a web page at /; "
        "the OpenAPI page at /docs.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    serve.add_argument(
        "--engine",
        choices=("auto", "direct", "prefect"),
        default="auto",
        help="prefect: each request is a flow run (needs PREFECT_API_URL); direct: the same "
        "steps in this process; auto (default): prefect when PREFECT_API_URL is set",
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted.

    Args:
        args: the parsed ``serve`` arguments (host, port, engine, log_level).

    Returns:
        0 after Ctrl-C; 2 (and one line on stderr) when a setting stops it from starting.
    """
    from adapters.errors import ConfigError
    from narrate.config.settings import load_settings
    from narrate.ops.prefect_server import resolve_engine
    from narrate.service.app import create_app
    from narrate.service.server import build_server, check_bind

    settings = load_settings()
    try:
        check_bind(args.host, settings.api)  # before anything is built or started
        engine = resolve_engine(args.engine)
        url = os.environ.get("PREFECT_API_URL")
        if engine == "prefect" and url:  # not at the first request
            from narrate.ops.prefect_server import require_prefect_server

            require_prefect_server(url)
        app = create_app(settings, engine=engine)
        server = build_server(app, args.host, args.port, settings.api, log_level=args.log_level)
    except ConfigError as exc:
        print(f"narrate serve: {exc}", file=sys.stderr)
        return 2
    if engine == "prefect" and not os.environ.get("PREFECT_API_URL"):
        print(
            "narrate serve: no PREFECT_API_URL: the first request starts a temporary Prefect "
            "server (10-20 s) and its runs are lost with it; point PREFECT_API_URL at a server",
            file=sys.stderr,
        )
    scheme = "https" if settings.api.tls_cert else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    auth = "JWT" if settings.api.auth_enabled else "none (loopback only)"
    print(
        f"narrate serve: {scheme}://{host}:{args.port}/ (engine {engine}, tokens {auth}, "
        f"queue {settings.api.concurrency}+{settings.api.max_queue})",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn finishes requests, re-raises it
        server.run()
    print("narrate serve: stopped", file=sys.stderr)
    return 0
