"""One TLS context per process for Prefect's API clients, instead of one per client.

Prefect builds a client for every task run that a thread or a Dask worker runs (its task
engine enters ``SyncClientContext``, and ``hydrated_context`` makes one more on a Dask
worker), and each client builds an ``ssl.SSLContext`` loading certifi's CA bundle, even
for an ``http://`` API: ~14 CPU ms each with OpenSSL 3 here, two per task run on a Dask
worker, about half of what Prefect's engine cost there per task run (cProfile of the
workers; bench/README.md, "Dask"). Prefect's clients take a ready context through their
``httpx_settings["verify"]`` and then build none; ``share_tls_context`` hands every client
of this process the same one, built by Prefect's own rules: ``PREFECT_API_TLS_INSECURE_
SKIP_VERIFY``, else ``PREFECT_API_SSL_CERT_FILE``, else certifi's bundle. A new context is
built when those settings or the certificate file change.

An ``SSLContext`` is meant to be shared by many connections (Python's ``ssl`` docs: "the
context ... holds data which can be reused by several connections"). Upstream proposes the
same: PrefectHQ/prefect#19106 ("allow using custom SSL contexts", open); OpenSSL 3's slow
CA loading: python/cpython#95031.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from typing import Any

_lock = threading.Lock()
_built: dict[tuple[Any, ...], ssl.SSLContext] = {}


def prefect_tls_context() -> ssl.SSLContext:
    """The context Prefect's clients would each build now, built once per settings and file.

    Raises:
        OSError, ssl.SSLError: the certificate file cannot be read (as Prefect would raise).
    """
    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    insecure = bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value())
    cert_file = None if insecure else (PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    stamp = os.stat(cert_file).st_mtime_ns if cert_file else None
    key = (insecure, cert_file, stamp)
    with _lock:
        context = _built.get(key)
        if context is None:
            if insecure:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context(cafile=cert_file)
            _built[key] = context
        return context


@functools.cache
def share_tls_context() -> None:
    """Give each new Prefect API client of this process the shared TLS context (once).

    A client given its own ``verify`` (a context, a path or ``False``) keeps it.
    """
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    for cls in (PrefectClient, SyncPrefectClient):
        cls.__init__ = _with_shared_context(cls.__init__)  # type: ignore[method-assign]


def _with_shared_context(init: Any) -> Any:
    @functools.wraps(init)
    def __init__(self: Any, *args: Any, httpx_settings: dict[str, Any] | None = None, **kw: Any):
        if httpx_settings is None or "verify" not in httpx_settings:
            httpx_settings = {**(httpx_settings or {}), "verify": prefect_tls_context()}
        init(self, *args, httpx_settings=httpx_settings, **kw)

    return __init__
