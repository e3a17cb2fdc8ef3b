"""Checks of Prefect, Redis and the Pushgateway, and of the folders and port narrate uses."""

from __future__ import annotations

import importlib.util
import os
import socket
import tempfile
import time
from base64 import b64encode
from collections.abc import Mapping
from pathlib import Path

from narrate.config.settings import Settings
from narrate.ops.doctor.base import Check, ms
from narrate.ops.metrics import DEFAULT_PORT, endpoint_label
from narrate.ops.prefect_server import START_HINT, URL_HINT

# --- services --------------------------------------------------------------------------------


def check_prefect(env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """The Prefect server at ``PREFECT_API_URL`` answers ``/health``; nothing when unset."""
    url = env.get("PREFECT_API_URL")
    if not url:
        return [Check("prefect", "OK", "PREFECT_API_URL unset: runs use a temporary server")]
    import httpx

    label = endpoint_label(url)  # what is printed; the requests go to the URL as given
    base = url.rstrip("/")  # credentials in it (a proxy's basic auth) are httpx's to send
    auth = env.get("PREFECT_API_AUTH_STRING")  # Prefect's own basic auth, "user:password"
    headers = {"Authorization": "Basic " + b64encode(auth.encode()).decode()} if auth else {}
    fix = f"{START_HINT}, or unset PREFECT_API_URL"
    try:
        started = time.perf_counter()
        health = httpx.get(base + "/health", headers=headers, timeout=timeout_s)
        took = ms(time.perf_counter() - started)
        version = httpx.get(base + "/admin/version", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return [
            Check(
                "prefect",
                "FAIL",
                f"{label} does not answer: {type(exc).__name__}: {str(exc).replace(url, label)}",
                fix,
            )
        ]
    if not health.is_success:
        found = f"{label}/health answered HTTP {health.status_code}"
        return [
            Check(
                "prefect",
                "FAIL",
                found,
                URL_HINT,
            )
        ]
    server = version.json() if version.is_success else "?"
    return [Check("prefect", "OK", f"{label} healthy in {took} ms, Prefect {server}")]


def check_redis(settings: Settings, timeout_s: float = 5.0) -> list[Check]:
    """PING the Redis the response cache uses; nothing when the cache is not on Redis."""
    cache = settings.llm.cache
    if cache.resolved_backend != "redis":
        return [Check("redis", "OK", f"not used (cache backend {cache.resolved_backend})")]
    label = endpoint_label(cache.redis_url or "redis://127.0.0.1:6379/0")
    try:
        import redis
    except ImportError:
        return [
            Check(
                "redis",
                "FAIL",
                "the redis package is not installed",
                "pip install 'narrate[redis]'",
            )
        ]
    client = redis.Redis.from_url(
        cache.redis_url or "redis://127.0.0.1:6379/0",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        started = time.perf_counter()
        client.ping()
        took = ms(time.perf_counter() - started)
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        return [
            Check(
                "redis",
                "FAIL",
                f"{label}: {type(exc).__name__}: {exc}",
                "start redis-server, fix NARRATE_CACHE_REDIS_URL / REDIS_URL, or set "
                "NARRATE_CACHE_BACKEND=sqlite",
            )
        ]
    finally:
        client.close()
    return [Check("redis", "OK", f"{label} answered PING in {took} ms (Redis {version})")]


def _writable(folder: Path) -> tuple[bool, str]:
    """Whether narrate can write in ``folder`` (created on first use when missing)."""
    if folder.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".narrate-doctor-"):
                pass
        except OSError as exc:
            return False, f"{folder} is not writable: {exc.strerror or exc}"
        return True, f"{folder} is writable"
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return False, f"{parent} is a file, so {folder} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return False, f"{folder} does not exist and {parent} is not writable"
    return True, f"{folder} will be created on first use"


def check_folders(settings: Settings) -> list[Check]:
    """The cache (SQLite), audit and output folders are writable."""
    folders: list[tuple[str, Path, str]] = []
    if settings.llm.cache.resolved_backend == "sqlite":
        folders.append(("cache folder", Path(settings.llm.cache.path).parent, "NARRATE_CACHE_PATH"))
    if settings.llm.audit.enabled:
        folders.append(("audit folder", Path(settings.llm.audit.dir), "NARRATE_AUDIT_DIR"))
    folders.append(("output folder", Path(settings.out_dir), "NARRATE_OUT_DIR or --out"))
    checks = []
    for name, folder, setting in folders:
        ok, found = _writable(folder.expanduser())
        fix = f"fix the folder's permissions or point {setting} elsewhere"
        checks.append(Check(name, "OK" if ok else "FAIL", found, "" if ok else fix))
    return checks


def port_in_use(addr: str, port: int) -> str | None:
    """Why ``addr:port`` cannot be bound (as the metrics server would), or None if it can."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        try:
            sock.bind((addr, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_metrics(settings: Settings, timeout_s: float = 5.0) -> list[Check]:
    """prometheus_client present, the metrics port free, the Pushgateway healthy when set."""
    metrics = settings.metrics
    checks = []
    if importlib.util.find_spec("prometheus_client") is None:
        checks.append(
            Check(
                "metrics",
                "WARN",
                "prometheus_client is not installed: no metrics",
                "pip install 'narrate[metrics]'",
            )
        )
    port = metrics.port if metrics.port is not None else DEFAULT_PORT
    configured = metrics.port is not None
    setting = "NARRATE_METRICS_PORT" if configured else "the default port"
    if port == 0:
        checks.append(Check("metrics port", "OK", "0: a free port is picked at start"))
    elif (why := port_in_use(metrics.addr, port)) is None:
        checks.append(Check("metrics port", "OK", f"{metrics.addr}:{port} is free ({setting})"))
    else:
        found = f"{metrics.addr}:{port} ({setting}) cannot be bound: {why}"
        fix = f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or set NARRATE_METRICS_PORT"
        if not configured:
            found += "; maybe a `narrate metrics` already serves it"
        checks.append(Check("metrics port", "FAIL" if configured else "WARN", found, fix))
    if metrics.pushgateway:
        import httpx

        label = endpoint_label(metrics.pushgateway)
        try:
            healthy = httpx.get(label.rstrip("/") + "/-/healthy", timeout=timeout_s).is_success
            why = "" if healthy else "its /-/healthy is not OK"
        except httpx.HTTPError as exc:
            healthy, why = False, f"{type(exc).__name__}: {exc}"
        if healthy:
            checks.append(Check("pushgateway", "OK", f"{label} is healthy"))
        else:
            checks.append(
                Check(
                    "pushgateway",
                    "WARN",
                    f"{label}: {why}; batch metrics will be lost",
                    "start prometheus-pushgateway or fix NARRATE_METRICS_PUSHGATEWAY",
                )
            )
    return checks
