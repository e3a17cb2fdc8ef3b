"""Is the Prefect server that ``PREFECT_API_URL`` names there? Asked once, before any work.

Without this, every image of a ``describe`` failed on its own with Prefect's ``RuntimeError:
Failed to reach API at ...``, reported as a fault of the image.
"""

from __future__ import annotations

import os
from typing import Literal

from adapters.errors import ConfigError

START_HINT = "start it (`make server` or `prefect server start`)"
URL_HINT = "PREFECT_API_URL must end in /api, e.g. http://127.0.0.1:4200/api"

EngineName = Literal["direct", "prefect"]


def resolve_engine(choice: str, *, prefect: bool = False) -> EngineName:
    """The engine to run on: the one rule of the CLI and the web service.

    Args:
        choice: ``auto`` (``prefect`` when ``PREFECT_API_URL`` is set or ``prefect`` is true,
            else ``direct``), ``direct`` or ``prefect``.
        prefect: the work needs Prefect even without a server (a Dask task runner).

    Returns:
        ``direct`` or ``prefect``.

    Raises:
        ConfigError: ``choice`` is none of these.
    """
    if choice == "auto":
        return "prefect" if os.environ.get("PREFECT_API_URL") or prefect else "direct"
    if choice not in ("direct", "prefect"):
        raise ConfigError(f"unknown engine {choice!r}: use auto, direct or prefect")
    return choice  # type: ignore[return-value]


def require_prefect_server(
    url: str, timeout_s: float = 5.0, *, instead: str = "use --engine direct"
) -> None:
    """Raise ``ConfigError`` unless ``GET {url}/health`` answers 2xx.

    Args:
        url: ``PREFECT_API_URL``, e.g. ``http://127.0.0.1:4200/api``.
        timeout_s: seconds for the connection and the answer.
        instead: what else the person can do, ending the hint ("start it ..., or ...").

    Raises:
        ConfigError: one line naming the URL (credentials removed): cannot be reached (with
            the reason and how to start the server), or answered with an HTTP error.

    Source: Prefect's REST API, ``GET /api/health`` (https://docs.prefect.io/v3/api-ref/rest-api).
    """
    import httpx

    from narrate.ops.metrics import endpoint_label  # here: the CLI imports this module at start

    label = endpoint_label(url)
    try:
        health = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        why = type(exc).__name__ if not str(exc) else str(exc)
        raise ConfigError(
            f"the Prefect server at {label} (PREFECT_API_URL) cannot be reached ({why}): "
            f"{START_HINT}, or {instead}"
        ) from None
    if not health.is_success:
        raise ConfigError(
            f"the Prefect server at {label} (PREFECT_API_URL) answered GET /health with HTTP "
            f"{health.status_code}: {URL_HINT}"
        )
