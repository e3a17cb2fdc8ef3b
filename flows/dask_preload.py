"""Dask worker preload: ready a long-lived worker for ``batch_describe`` before its first task.

Start each worker of a cluster that runs narrate's batches with it::

    export PREFECT_API_URL=http://HOST:4200/api NARRATE_CPU_SLOTS=1
    dask worker tcp://HOST:8786 --nworkers 2 --preload flows.dask_preload

(``NARRATE_CPU_SLOTS``: the cores each worker process may use for OCR and features, here
2 cores shared by 2 processes.) Without the preload a worker imports Prefect and narrate's
flow modules on its event loop when it unpickles its first task (~1.6-2 CPU s) and loads
RapidOCR's models on its first unsure image (~1 s); with it, both are paid once, when the
worker starts, not by the first batch (bench/README.md, "Dask").

A worker that cannot reach one Prefect server would record its task runs on a throwaway
server of its own: the preload says so at ERROR when a worker has no ``PREFECT_API_URL``.
A step that cannot be readied (say, no espeak-ng) is logged; the task reports it when run.

It also stops Prefect from rebuilding its whole ``Settings`` for every task run the worker
hydrates (pydantic-settings re-reads every source: ~55 CPU ms, twice per task run): one
settings context is built per distinct serialized settings and reused
(``share_settings_contexts``; upstream proposal: PrefectHQ/prefect#20853, not merged); and
its API clients share one TLS context (``flows._prefect_clients``: ~14 CPU ms per client,
two clients per task run).

Source: Dask, "Customize initialization", preload scripts:
https://distributed.dask.org/en/stable/customize-initialization.html
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from distributed import Worker

log = logging.getLogger("narrate.flows.dask_preload")


def dask_setup(worker: Worker | None = None) -> None:
    """Import the flow's modules and build every step's adapter in this worker process.

    With no ``PREFECT_API_URL`` for this worker it readies nothing and logs why at ERROR
    (Dask starts a worker whatever its preload does; the flow's side refuses such a cluster
    only when the flow itself has no ``PREFECT_API_URL``).
    """
    started = time.perf_counter()
    import prefect.task_engine  # noqa: F401  (what unpickling the first task imports)

    from flows._prefect_clients import share_tls_context
    from flows.batch import configured_api_url
    from narrate.config.settings import load_settings
    from narrate.pipeline.steps import ready_process

    share_settings_contexts()
    share_tls_context()
    if not configured_api_url():
        log.error(
            "narrate: this Dask worker would record narrate's task runs on a throwaway "
            "Prefect server: set PREFECT_API_URL=http://HOST:4200/api (the server the flow "
            "uses) before `dask worker`"
        )
        return
    for failure in ready_process(load_settings()):
        log.warning("narrate: not readied in this worker (the task will say why): %s", failure)
    # the batch's tasks find these adapters built (narrate.pipeline.steps caches them)
    name = getattr(worker, "name", "") if worker is not None else ""
    log.info("narrate: worker %s ready in %.1f s", name, time.perf_counter() - started)


def share_settings_contexts() -> None:
    """Build Prefect's settings context once per distinct serialized settings, in this process.

    ``prefect.context.hydrated_context`` (how a Dask worker enters the flow's context for each
    task run) calls ``SettingsContext(**serialized)``, which validates the settings dict into
    a new ``Settings`` through every pydantic-settings source (environment, dotenv, profiles,
    TOML): ~55 CPU ms each time, and it runs twice per task run. The ``Settings`` and
    ``Profile`` built the first time are immutable and are reused (pydantic does not
    revalidate a model instance); each task run still gets a context object of its own.
    Idempotent.
    """
    import json

    import prefect.context

    base = prefect.context.SettingsContext
    if getattr(base, "narrate_shared", False):
        return
    built: dict[str, tuple[Any, Any]] = {}
    lock = threading.Lock()

    class SharedSettingsContext(base):  # type: ignore[misc, valid-type]
        narrate_shared: ClassVar[bool] = True

        def __init__(self, **data: Any) -> None:
            try:
                key = json.dumps(data, sort_keys=True, default=str)
            except (TypeError, ValueError):  # not a serialized context: build as Prefect does
                super().__init__(**data)
                return
            with lock:
                hit = built.get(key)
            if hit is None:
                super().__init__(**data)
                with lock:
                    built[key] = (self.profile, self.settings)
            else:
                super().__init__(profile=hit[0], settings=hit[1])

    prefect.context.SettingsContext = SharedSettingsContext  # type: ignore[misc]
