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

The LocalCluster that ``batch_describe`` starts forks its workers from a forkserver that
imported ``WORKER_MODULES`` once (``start_forkserver``), instead of spawning interpreters
that each import them: ~2 CPU s per worker less, paid on one core while the flow's process
sets up (bench/README.md, "Dask").

Sources: Dask, "Customize initialization", preload scripts:
https://distributed.dask.org/en/stable/customize-initialization.html; Python,
``multiprocessing``, "Contexts and start methods" (``set_forkserver_preload``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from distributed import Worker

log = logging.getLogger("narrate.flows.dask_preload")

# What a local cluster's worker process imports before its first task: Dask's worker, this
# preload, what unpickling a task run needs, the adapters of the default engines (~2 CPU s
# in all; Prefect ~1 s, RapidOCR's Python side ~0.65 s). Imports only, nothing built: the
# forkserver forks every worker from its memory, and a thread pool (onnxruntime's sessions)
# would not survive the fork. A module that is not installed is skipped.
WORKER_MODULES = (
    "distributed",
    "prefect_dask",
    "prefect.task_engine",
    "flows.dask_preload",
    "flows.batch",
    "narrate.pipeline.steps",
    "adapters.ocr.auto",
    "adapters.features.numpy_pillow",
    "adapters.tts.voices",
    "narrate.ops.llm",
    "rapidocr.main",
)


# This process's environment when ``start_forkserver`` started the forkserver (which keeps it)
_forkserver_env: dict[str, str] | None = None


def environment_for_workers() -> dict[str, str]:
    """What a forked worker must be given for this process's environment to be its own.

    The forkserver keeps the environment it started with; a long-lived process may have
    changed its own since (a later batch with another ``NARRATE_*``). Only the variables
    that differ are handed over, so the cluster's options carry no API key that the worker
    has anyway. With a forkserver started elsewhere (its environment unknown), all of it.
    """
    import os

    if _forkserver_env is None:
        return dict(os.environ)
    return {key: value for key, value in os.environ.items() if _forkserver_env.get(key) != value}


def forkserver_pid() -> int | None:
    """The pid of this process's multiprocessing forkserver; None until one was started."""
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined,no-any-return]


def has_forkserver() -> bool:
    """Whether this platform offers the forkserver start method (POSIX, not Windows)."""
    import multiprocessing

    return "forkserver" in multiprocessing.get_all_start_methods()


def start_forkserver() -> None:
    """Start this process's multiprocessing forkserver, importing ``WORKER_MODULES``, now.

    For a local cluster with ``distributed.worker.multiprocessing-method: forkserver``: it
    imports on one core while this process goes on (the CLI imports Prefect, the flow sets
    up), and every worker is forked from it ready to run. Returns at once; a forkserver
    already running in this process (an earlier batch's) is kept as it is. Dask sets its own
    preload list only on a forkserver it starts, so this one's stands. Does nothing where
    there is no forkserver (``has_forkserver``).
    """
    global _forkserver_env
    if not has_forkserver():
        return
    import multiprocessing
    import os
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(WORKER_MODULES))
    started = forkserver_pid() is not None
    environment = dict(os.environ)
    forkserver.ensure_running()
    if not started:
        _forkserver_env = environment


def dask_setup(worker: Worker | None = None) -> None:
    """Import the flow's modules and build every step's adapter in this worker process.

    With no ``PREFECT_API_URL`` for this worker it readies nothing and logs why at ERROR
    (Dask starts a worker whatever its preload does; the flow's side refuses such a cluster
    only when the flow itself has no ``PREFECT_API_URL``).
    """
    started = time.perf_counter()
    # Forked from a forkserver that imported Prefect before this worker's environment
    # (``PREFECT_API_URL``...) was applied: Prefect's settings still hold the server's.
    forked_warm = "prefect.context" in sys.modules
    import prefect.context
    import prefect.task_engine  # what unpickling the first task imports

    if forked_warm:
        prefect.context.refresh_global_settings_context()

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
