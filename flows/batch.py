"""Flow ``batch_describe``: describe every image of a folder, a glob or a list, resumably.

Each image is one ``describe_batch_item`` task run, at most ``concurrency`` at a time, on
threads or on a Dask cluster (a running one, or a LocalCluster of worker processes forked
from a forkserver that imported their modules once). Inside it the steps of
``image_to_speech`` run as plain functions (``narrate.pipeline.describe_one``): one task run
per image keeps a batch of thousands readable in the UI and cuts the orchestration cost
(bench/README.md); the manifest, not Prefect's task cache, decides what is already done.
Resuming, output names and the summary live in ``narrate.pipeline.batch``; this module
orchestrates and publishes artifacts.

Run it from Python, from the ``nightly-batch`` deployment (prefect.yaml), the CLI
(``narrate batch``) or as a script: ``python -m flows.batch FOLDER [OUT]``.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows._outcome import (
    BAD_INPUT,
    bad_input,
    batch_run_name,
    batch_state,
    quiet_bad_input_tracebacks,
)
from flows._setup import flow_settings
from flows.dask_preload import environment_for_workers, has_forkserver, start_forkserver
from narrate.config.settings import Settings
from narrate.ops.metrics import push_to_gateway
from narrate.pipeline.batch import (
    BatchRun,
    ItemOutcome,
    WorkItem,
    drive,
    nothing_in,
    process_item,
    unmatched_inputs,
)
from narrate.pipeline.budget import TokenBudget
from narrate.pipeline.results import on_disk
from narrate.pipeline.sequence import plain_steps

DEFAULT_CONCURRENCY = 8
TABLE_ROWS = 200  # rows in the summary table artifact (failures first); the CSV has all
# Dask's housekeeping, at intervals that suit a batch of seconds-long tasks: an idle 2-worker
# cluster used 0.115 CPU s per second with the defaults, 0.021 with these (bench/README.md,
# "Dask"). The profiler samples every worker thread's stack every 10 ms for the dashboard
# (off here); the tick (20 ms) only times event-loop stalls; the memory monitor (100 ms)
# guards the memory limit, which a second's delay does not breach on images.
QUIET_DASK: dict[str, Any] = {
    "admin": {"tick": {"interval": "1s"}, "system-monitor": {"interval": "2s"}},
    "worker": {"profile": {"enabled": False}, "memory": {"monitor-interval": "1s"}},
}


@task(name="describe_batch_item", task_run_name="{work.name}", cache_policy=NO_CACHE)
def describe_batch_item(
    work: WorkItem, out_dir: Path, lang: str, settings: Settings, budget: TokenBudget | None = None
) -> Any:
    """Describe one image of the batch: OCR, features, description, speech.

    A bad image ends this task run ``Failed`` with the one-line reason and no traceback;
    the flow records it (``future.result()`` raises the ``InputError``) and goes on.
    """
    quiet_bad_input_tracebacks()  # in a Dask worker process too
    try:
        return process_item(
            work, out_dir=out_dir, lang=lang, settings=settings,
            steps=plain_steps(settings.llm.cache), budget=budget,
        )  # fmt: skip
    except BAD_INPUT as exc:
        return bad_input(exc)


def task_runner_for(
    runner: Literal["thread", "dask"], concurrency: int, dask_address: str | None = None
) -> TaskRunner[Any]:
    """Threads in this process, or Dask: an existing scheduler, else a local cluster.

    The local cluster's workers are forked from the forkserver ``batch_describe`` starts
    first (``flows.dask_preload.start_forkserver``): Dask, Prefect and narrate imported once
    for all of them, not by each in a new interpreter.

    Every Dask worker must report to the flow's Prefect server: a worker process with no
    ``PREFECT_API_URL`` starts a throwaway server of its own and the task runs are lost to
    the user. So the local cluster's worker processes get the flow's API URL, and an existing
    cluster is refused unless ``PREFECT_API_URL`` is set (its workers need the same value).

    Raises:
        ConfigError: prefect-dask is missing, or an existing cluster with no Prefect server.
    """
    from adapters.errors import ConfigError

    if runner == "thread":
        return ThreadPoolTaskRunner(max_workers=concurrency)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError(
            "the dask runner needs prefect-dask: pip install 'narrate[dask]'"
        ) from exc
    if dask_address:
        check_cluster(dask_address)
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(concurrency, _flow_api_url()))


def check_cluster(dask_address: str, timeout_s: float = 5.0) -> None:
    """Refuse a running Dask cluster narrate cannot use, before anything starts.

    Raises:
        ConfigError: no ``PREFECT_API_URL`` (the workers would record their task runs on
            throwaway servers), or nothing answers at a ``tcp://HOST:PORT`` address within
            ``timeout_s`` (Dask's client would wait 30 s, then raise through the flow).
    """
    import socket
    from urllib.parse import urlsplit

    from adapters.errors import ConfigError

    if not configured_api_url():
        raise ConfigError(
            f"the Dask cluster at {dask_address} would record its task runs on throwaway "
            "Prefect servers: start one server (`prefect server start`), then set "
            "PREFECT_API_URL=http://HOST:4200/api for narrate and for every `dask worker`"
        )
    where = urlsplit(dask_address if "://" in dask_address else f"tcp://{dask_address}")
    if where.scheme != "tcp" or not where.hostname or not where.port:
        return  # tls://, ucx://, inproc://: Dask's client checks them itself
    try:
        socket.create_connection((where.hostname, where.port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"no Dask scheduler answers at {dask_address} ({exc.strerror or exc}): start one "
            "(`dask scheduler`) or fix --dask-address"
        ) from None


def local_cluster_kwargs(concurrency: int, api_url: str | None) -> dict[str, Any]:
    """A LocalCluster of worker processes (one per core) reporting to ``api_url``.

    Each worker runs ``flows.dask_preload`` as it starts (adapters and models loaded before
    the first task, Prefect's settings built once) and gets ``QUIET_DASK`` and what changed
    in this process's environment since the forkserver started
    (``flows.dask_preload.environment_for_workers``). Under ``_quiet_dask(local=True)`` the
    workers are forked from
    ``flows.dask_preload.start_forkserver``'s forkserver, their imports done.
    """
    import dask
    import distributed  # noqa: F401  (loads its part of the Dask config)

    workers = max(1, min(os.cpu_count() or 1, concurrency))
    # The workers share the cores: each runs OCR and features on its share of them only
    # (NARRATE_CPU_SLOTS), however many threads it has for images waiting on the LLM.
    slots = max(1, (os.cpu_count() or 1) // workers)
    env = {
        # The forkserver the workers come from keeps the environment of its start (an
        # earlier batch's, in a long-lived process): each worker gets what changed since.
        **environment_for_workers(),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "OMP_THREAD_LIMIT": "1",
        "NARRATE_CPU_SLOTS": str(slots),
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return {
        "n_workers": workers,
        "threads_per_worker": max(1, -(-concurrency // workers)),
        "processes": True,
        "dashboard_address": None,
        # The scheduler still serves its HTTP routes (health, metrics): on a free port, not
        # 8787, where a second cluster warned "Port 8787 is already in use" in 3 lines.
        "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
        "preload": ["flows.dask_preload"],
        "env": env,  # handed by each Nanny to its worker process
        # Each Nanny hands its worker this config whole (a shallow merge): pass all of it.
        "config": {"distributed": dask.config.merge(dask.config.get("distributed"), QUIET_DASK)},
    }


def quiet_dask_keys() -> dict[str, Any]:
    """``QUIET_DASK`` as dotted Dask config keys (``distributed.admin.tick.interval``: ``1s``).

    As environment variables for ``dask scheduler``/``dask worker``: ``DASK_`` + the key in
    capitals, ``.`` -> ``__``, ``-`` -> ``_`` (Dask, "Configuration": environment variables).
    """

    def flat(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        for key, value in tree.items():
            name = f"{prefix}.{key}"
            keys.update(flat(value, name) if isinstance(value, dict) else {name: value})
        return keys

    return flat(QUIET_DASK, "distributed")


def _quiet_dask(*, local: bool = False) -> AbstractContextManager[Any]:
    """``QUIET_DASK`` for the Dask objects made in this process (a local scheduler, nannies).

    Sets its keys one by one over Dask's defaults (``distributed`` is imported first: it
    loads them). ``local``: the nannies fork their workers from the forkserver
    (``flows.dask_preload.start_forkserver``) instead of spawning them.
    """
    import dask
    import distributed  # noqa: F401  (loads its part of the Dask config)

    keys = quiet_dask_keys()
    if local and has_forkserver():
        keys["distributed.worker.multiprocessing-method"] = "forkserver"
    return dask.config.set(keys)


def configured_api_url() -> str | None:
    """The Prefect API URL set for this process (settings or ``PREFECT_API_URL``), if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or os.environ.get("PREFECT_API_URL")


def _flow_api_url() -> str | None:
    """The API URL of the server this flow reports to (the temporary one included)."""
    configured = configured_api_url()
    if configured:
        return configured
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


class _ProgressArtifact:
    """A Prefect progress artifact, updated whenever the whole percentage changes."""

    def __init__(self, total: int) -> None:
        self.last = -1
        self.total = total
        self.failed: list[str] = []  # the latest failures, one line each, shown as they happen
        artifact_id = create_progress_artifact(
            progress=0.0, key="batch-progress", description=f"narrate batch: {total} image(s)"
        )
        assert isinstance(artifact_id, UUID)  # sync context: the id, not a coroutine
        self.id = artifact_id

    def __call__(self, done: int, total: int, outcome: ItemOutcome) -> None:
        percent = int(100 * done / total) if total else 100
        description = None
        if outcome.status == "failed":
            named = outcome.item in outcome.reason  # an InputError names its file already
            line = outcome.reason if named else f"{outcome.item}: {outcome.reason}"
            # the CLI prints its own line instead (flows._outcome.RunFailureConsoleFilter)
            logging.getLogger("narrate.batch").warning(
                "failed: %s", line, extra={"cli_says_it": True}
            )
            self.failed = [*self.failed[-4:], line]
            description = f"narrate batch: {self.total} image(s); failed so far:\n" + "\n".join(
                f"- {f}" for f in self.failed
            )
        if percent != self.last or description is not None:
            self.last = percent
            update_progress_artifact(
                artifact_id=self.id, progress=float(percent), description=description
            )


def _publish_summary(batch: BatchRun) -> None:
    rows = [r for _, r in zip(range(TABLE_ROWS), batch.rows("failed"), strict=False)]
    rows += [
        r
        for _, r in zip(range(TABLE_ROWS - len(rows)), batch.rows(), strict=False)
        if r["status"] != "failed"
    ]
    counts = ", ".join(f"{batch.counts[s]} {s}" for s in ("ok", "skipped", "failed"))
    tokens = f"; LLM tokens: {batch.budget.summary()}"
    if batch.skipped_budget:
        tokens += f", {batch.skipped_budget} image(s) left for a later run (token budget reached)"
    if batch.skipped_setting:
        tokens += f"; {batch.skipped_setting} image(s) not tried: a setting is wrong"
    create_table_artifact(
        table=rows,
        key="batch-summary",
        description=f"narrate batch into {batch.out_dir}: {counts}{tokens}",
    )


@flow(name="batch-describe", flow_run_name=batch_run_name, timeout_seconds=24 * 3600)
def batch_describe(
    inputs: str | list[str],
    out_dir: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    lang: Literal["auto", "en", "zh"] = "auto",
    runner: Literal["thread", "dask"] = "thread",
    dask_address: str | None = None,
    token_budget: int | None = None,
) -> dict[str, Any]:
    """Describe every image aloud: ``<out>/<name>.json`` + ``.wav``, a manifest, a summary.

    Args:
        inputs: a folder (searched recursively), a glob such as ``scans/**/*.png``, or a
            list of image paths.
        out_dir: where results go; default ``NARRATE_OUT_DIR`` or ``./narrate-out``.
        concurrency: images in flight at once (OCR runs on at most one per core; the rest
            wait for the LLM, whose request rate ``NARRATE_LLM_QPS`` caps).
        lang: the language of the text in the images; ``auto`` detects English or Chinese.
        runner: ``thread`` (this process) or ``dask`` (a Dask cluster).
        dask_address: a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``; default a
            LocalCluster on this machine.
        token_budget: LLM tokens (prompt + completion) this run may use, default
            ``NARRATE_LLM_TOKEN_BUDGET`` (unset: no limit). Once used up, the remaining images
            are ``skipped: token budget reached`` and a later run picks them up.

    Returns:
        The counts (``total``, ``ok``, ``skipped``, ``failed``, ``seconds``, ``tokens``) and
        where ``summary.json`` and ``summary.csv`` are. The run ends ``Completed`` with
        "N ok, M failed" as its message; ``Completed with failures`` when some images
        failed, ``Failed`` when all did (``flows._outcome.batch_state``).

    Raises:
        InputError: ``inputs`` names nothing that can be read.
    """
    if runner == "dask" and not dask_address:
        start_forkserver()  # the workers' imports, on one core while the flow sets up
    try:
        settings = flow_settings()
        out = on_disk(out_dir) if out_dir else settings.out_dir
        concurrency = max(1, int(concurrency))
        batch = BatchRun(inputs, out, settings=settings, lang=lang, token_budget=token_budget)
    except BAD_INPUT as exc:
        return bad_input(exc)
    for spec in unmatched_inputs(inputs, out):  # a mistyped glob among good ones
        get_run_logger().warning("%s", nothing_in(spec), extra={"cli_says_it": True})
    batch.on_progress = _ProgressArtifact(batch.total)
    with (
        _quiet_dask(local=not dask_address) if runner == "dask" else nullcontext(),
        task_runner_for(runner, concurrency, dask_address) as task_runner,
    ):
        summary = drive(
            batch,
            lambda work: task_runner.submit(
                describe_batch_item,
                parameters={
                    "work": work,
                    "out_dir": out,
                    "lang": lang,
                    "settings": settings,
                    "budget": batch.budget,
                },
            ),
            limit=concurrency,
        )
    _publish_summary(batch)
    if settings.metrics.pushgateway:
        push_to_gateway(settings.metrics.pushgateway, job="narrate-batch")
    first = next(batch.rows("failed"), None)
    return batch_state(
        summary.to_dict(),
        ok=summary.ok,
        skipped=summary.done_before,
        failed=summary.failed,
        left=summary.left,
        first=first["reason"] if first else None,
    )


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "assets/samples"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(batch_describe(folder, out_dir=target, concurrency=os.cpu_count() or 2))
