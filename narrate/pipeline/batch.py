"""Batch describing, independent of the engine: inputs, output names, resume, summaries.

``BatchRun`` streams the inputs (a folder, a glob, or paths), decides for each image whether
it is already done (see ``narrate.pipeline.manifest``) and under which output name it goes, records
outcomes and writes the summary. ``process_item`` does one image with given ``Steps``;
``drive`` keeps at most ``limit`` items in flight on any executor whose futures have
``add_done_callback`` and ``result`` (a ``ThreadPoolExecutor``, a Prefect task runner).
The Prefect flow (``flows/batch.py``) and the CLI's direct engine both use these.

Memory stays flat as the batch grows: inputs are a generator, images are opened only by
the item that needs them, and summary rows go to a file as they arrive.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import json
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from adapters.errors import InputError
from adapters.files import atomic_write, file_sha256
from narrate.config.settings import Settings
from narrate.ops import metrics
from narrate.pipeline.budget import (
    BUDGET_REASON,
    TokenBudget,
    TokenBudgetReached,
    estimate_tokens,
)
from narrate.pipeline.manifest import (
    STATE_DIR,
    Manifest,
    checkpoint_path,
    load_description,
    output_settings,
    save_description,
    settings_fingerprint,
)
from narrate.pipeline.results import DescribeResult, on_disk, readable
from narrate.pipeline.sequence import Steps, describe_one

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
SUMMARY_FIELDS = ("item", "status", "reason", "backend", "tokens", "seconds", "output")
Status = Literal["ok", "skipped", "failed"]


@functools.cache
def cpu_slots() -> threading.BoundedSemaphore:
    """This process's slots for the CPU-bound steps: how many images may be in OCR or features.

    OCR and feature extraction are CPU-bound: one image per core at a time, however many are
    in flight (most of them wait for the LLM). ``NARRATE_CPU_SLOTS`` (``Settings.cpu_slots``)
    overrides the count, read from this process's own environment: Dask worker processes
    sharing the cores get their share that way, while the settings they are handed come from
    the flow's process. One semaphore per process, shared by every batch and request in it.
    """
    from narrate.pipeline.steps import cpu_share

    return threading.BoundedSemaphore(cpu_share())


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One input image and the folder its output name is relative to."""

    path: Path
    root: Path


def is_glob(text: str) -> bool:
    """Does ``text`` hold a wildcard (``*``, ``?``, ``[``) that ``glob`` expands?"""
    return any(ch in text for ch in "*?[")


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob pattern before the first wildcard."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if is_glob(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _walk(folder: Path, skip: Path | None) -> Iterator[Path]:
    """Image files under ``folder``, depth first, sorted per folder; hidden entries skipped."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if skip is None or path.resolve() != skip:
                yield from _walk(path, skip)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def iter_sources(inputs: str | Path | Sequence[str | Path], out_dir: Path) -> Iterator[Source]:
    """Stream the images named by ``inputs``: folders (recursively), globs, or file paths.

    A named file is yielded even when it is missing or not an image, so that it fails as an
    item with its reason; folders and globs yield image files only, never ``out_dir``. A
    file named twice (twice over, or also through its folder or a glob) is yielded once.
    """
    skip = Path(out_dir).resolve()
    seen: set[Path] = set()
    for spec in _specs(inputs):
        for source in _sources_of(spec, skip):
            real = source.path.resolve()
            if real not in seen:
                seen.add(real)
                yield source


def _specs(inputs: str | Path | Sequence[str | Path]) -> list[str]:
    return [str(inputs)] if isinstance(inputs, str | Path) else [str(i) for i in inputs]


def _sources_of(spec: str, skip: Path) -> Iterator[Source]:
    """The images one input names (``iter_sources`` without the de-duplication)."""
    path = on_disk(Path(spec).expanduser())  # also a non-UTF-8 name given readably
    if path.is_dir():
        for found in _walk(path, skip):
            yield Source(found, path)
    elif is_glob(spec):
        root = _glob_root(spec)
        for name in glob.iglob(spec, recursive=True):
            found = Path(name)
            is_image = found.is_file() and found.suffix.lower() in IMAGE_SUFFIXES
            if is_image and skip not in found.resolve().parents:
                yield Source(found, root)
    else:
        yield Source(path, path.parent)


def unmatched_inputs(inputs: str | Path | Sequence[str | Path], out_dir: Path) -> list[str]:
    """The folders and globs among ``inputs`` that name no image, as given.

    Each stops at its first image, so a folder or glob that has some costs little. A named
    file is never listed: it is an item of the batch (a missing one fails with its reason).
    """
    skip = Path(out_dir).resolve()
    return [
        spec
        for spec in _specs(inputs)
        if (is_glob(spec) or on_disk(Path(spec).expanduser()).is_dir())
        and next(_sources_of(spec, skip), None) is None
    ]


def nothing_in(spec: str) -> str:
    """The warning for an input that names no image while others do (``unmatched_inputs``)."""
    return f"no image found in {readable(spec)}; going on with the other inputs"


def count_sources(inputs: str | Path | Sequence[str | Path], out_dir: Path) -> int:
    """How many images ``inputs`` names (one pass over the names; nothing is opened)."""
    return sum(1 for _ in iter_sources(inputs, out_dir))


def _nothing_found(inputs: str | Path | Sequence[str | Path]) -> str:
    specs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    names = ", ".join(readable(str(spec)) for spec in specs) or "(no input named)"
    kinds = " ".join(sorted(IMAGE_SUFFIXES))
    return (
        f"no image found in {names} (folders are searched recursively for {kinds}; a glob "
        "must match such files); nothing was done"
    )


# -- items and outcomes ------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItem:
    """One image to describe: where it is, what its outputs are called, its manifest key."""

    index: int
    path: Path
    item: str  # the input as the user named it (shown in summaries)
    name: str  # output stem relative to out_dir, POSIX style: "a" or "sub/a"
    key: str


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one input: a row of the summary."""

    item: str
    status: Status
    reason: str = ""
    backend: str = ""
    tokens: int | None = 0  # None: the LLM server did not say (not "free")
    seconds: float = 0.0
    tokens_estimate: int = 0  # charged to the budget when ``tokens`` is None
    output: str = ""  # the JSON file, relative to out_dir
    key: str = ""
    name: str = ""

    def row(self) -> dict[str, Any]:
        """The summary row (``SUMMARY_FIELDS``)."""
        data = dataclasses.asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return {k: data[k] for k in SUMMARY_FIELDS}


def _checkpointed(step: Callable[..., Any], checkpoint: Path) -> Callable[..., Any]:
    """``step`` (describe) that reuses a saved description, and saves a new one at once."""

    def run(*args: Any, **kwargs: Any) -> Any:
        saved = load_description(checkpoint)
        if saved is not None:
            return saved
        description = step(*args, **kwargs)
        save_description(checkpoint, description)
        return description

    return run


def _budgeted(step: Callable[..., Any], budget: TokenBudget | None) -> Callable[..., Any]:
    """``step`` (the LLM call) that first checks the batch's token budget."""
    if budget is None or budget.limit is None:
        return step

    def run(*args: Any, **kwargs: Any) -> Any:
        budget.check()
        return step(*args, **kwargs)

    return run


def process_item(
    work: WorkItem,
    *,
    out_dir: Path,
    lang: str,
    settings: Settings,
    steps: Steps,
    budget: TokenBudget | None = None,
) -> ItemOutcome:
    """Describe one image with ``steps``; errors propagate (the caller records them).

    OCR and features wait for a free core; the description is checkpointed under the item's
    key so that a resumed run never repeats a finished LLM call. With a ``budget`` that is
    used up before the item's LLM call, the item is ``skipped`` (``BUDGET_REASON``).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    name = PurePosixPath(work.name)
    checkpoint = checkpoint_path(out_dir, work.key)
    item_steps = dataclasses.replace(
        steps,
        cpu_slot=cpu_slots(),
        llm=_checkpointed(_budgeted(steps.llm, budget), checkpoint),
    )
    try:
        if budget is not None:
            budget.check()
        result = describe_one(
            work.path,
            out_dir=out_dir / name.parent,
            lang=lang,
            settings=settings,
            steps=item_steps,
            stem=name.name,
        )
    except TokenBudgetReached:
        return left_for_later(work, settings, BUDGET_REASON, time.perf_counter() - started)
    return ItemOutcome(
        item=work.item,
        status="ok",
        reason=_llm_mark(result),
        backend=result.backend,
        tokens=None if result.usage is None else int(result.usage.get("total_tokens", 0) or 0),
        tokens_estimate=estimate_tokens(result.ocr_text, result.description),
        seconds=time.perf_counter() - started,
        output=f"{work.name}.json",
        key=work.key,
        name=work.name,
    )


# The reason of the items a batch did not try after a wrong setting failed one of them.
SETTING_REASON = "not tried: a setting is wrong (the failed image says which); fix it and rerun"


def left_for_later(
    work: WorkItem, settings: Settings, reason: str, seconds: float = 0.0
) -> ItemOutcome:
    """The outcome of an item skipped for a later run to do.

    ``reason``: ``BUDGET_REASON`` (the token budget is used up) or ``SETTING_REASON`` (a wrong
    setting failed an earlier item).
    """
    return ItemOutcome(
        item=work.item,
        status="skipped",
        reason=reason,
        backend=settings.llm.resolved_backend,
        seconds=seconds,
        key=work.key,
        name=work.name,
    )


def _llm_mark(result: DescribeResult) -> str:
    """The summary's reason for an answer that was cut or withheld (empty when whole)."""
    if result.filtered:
        return f"answer withheld ({result.finish_reason}); said so in the audio"
    if result.truncated:
        return "answer cut short; said so in the audio"
    return ""


# -- the run -----------------------------------------------------------------------------

ProgressListener = Callable[[int, int, ItemOutcome], None]
_LISTENERS: list[ProgressListener] = []


@contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """Call ``listener(done, total, outcome)`` after each item of batches in this process.

    The CLI draws its progress bar this way while the flow runs.
    """
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


@dataclass(frozen=True)
class BatchSummary:
    """The end of a batch run: counts and where the summaries are."""

    out_dir: Path
    total: int
    ok: int
    skipped: int
    failed: int
    seconds: float
    tokens: int
    summary_json: Path
    summary_csv: Path
    token_budget: int | None = None  # NARRATE_LLM_TOKEN_BUDGET or the flow's parameter
    skipped_budget: int = 0  # of ``skipped``: left for a later run by the token budget
    skipped_setting: int = 0  # of ``skipped``: not tried after a wrong setting (SETTING_REASON)

    @property
    def left(self) -> int:
        """Of ``skipped``: images left for a later run (token budget, a wrong setting)."""
        return self.skipped_budget + self.skipped_setting

    @property
    def done_before(self) -> int:
        """Of ``skipped``: images whose outputs an earlier run already wrote."""
        return self.skipped - self.left

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {k: readable(str(v)) if isinstance(v, Path) else v for k, v in vars(self).items()}


class BatchRun:
    """One batch over ``inputs`` into ``out_dir``: plan the items, record outcomes, summarise.

    Raises:
        InputError: ``inputs`` name no image (an empty folder, a glob that matches none);
            ``out_dir`` is then not created.
    """

    def __init__(
        self,
        inputs: str | Path | Sequence[str | Path],
        out_dir: Path,
        *,
        settings: Settings,
        lang: str = "auto",
        on_progress: ProgressListener | None = None,
        token_budget: int | None = None,
    ) -> None:
        self.inputs = inputs
        self.budget = TokenBudget(
            token_budget if token_budget is not None else settings.llm.token_budget
        )
        self.skipped_budget = 0
        # Set by the first item that fails on a ConfigError (a setting, e.g. an unknown voice):
        # every later one would fail the same way, so they are skipped, and a rerun does them.
        self.halted = False
        self.skipped_setting = 0
        self.out_dir = Path(out_dir)
        self.settings = settings
        self.lang = lang
        self.fingerprint = settings_fingerprint(settings, lang)
        self.total = count_sources(inputs, self.out_dir)
        if not self.total:  # a mistyped glob or the wrong folder: say so, create nothing
            raise InputError(None, _nothing_found(inputs))
        self.manifest = Manifest(self.out_dir)
        self.counts: Counter[str] = Counter()
        self.tokens = 0
        self.on_progress = on_progress
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        self._rows_path = self.out_dir / STATE_DIR / "summary-rows.jsonl"
        self._rows_path.parent.mkdir(parents=True, exist_ok=True)
        self._rows = open(self._rows_path, "w", encoding="utf-8")  # noqa: SIM115

    @property
    def done(self) -> int:
        """Items recorded so far."""
        return sum(self.counts.values())

    def _name_for(self, source: Source, item: str, digest: str) -> str:
        """The output stem: the path relative to its root, without suffix.

        A clash with a different source (now or in an earlier run) gets the content hash
        appended, and ``-2``, ``-3``... when byte-identical images share the stem too.
        """
        try:
            relative = source.path.relative_to(source.root)
        except ValueError:
            relative = Path(source.path.name)
        name = PurePosixPath(*relative.with_suffix("").parts).as_posix() or "image"
        name = readable(name)  # a non-UTF-8 name gets a UTF-8 one, as describe's outputs do
        owner = self.manifest.names.get(name)
        if owner is not None and owner != item:
            hashed = name = f"{name}-{digest[:8]}"
            copies = 1
            while self.manifest.names.get(name, item) != item:  # same bytes, same stem
                copies += 1
                name = f"{hashed}-{copies}"
        self.manifest.names.setdefault(name, item)
        return name

    def plan(self) -> Iterator[WorkItem | ItemOutcome]:
        """Each input in turn: a ``WorkItem`` to run, or an outcome decided without it.

        The outcome is ``skipped`` when the item is already done, ``failed`` when unreadable.
        Item and output names are UTF-8 (``readable``): a non-UTF-8 file name (Latin-1 bytes
        from an old zip) is kept as far as it can be represented in the summaries, the
        manifest and the artifacts, while ``WorkItem.path`` stays the file's real path.
        """
        for index, source in enumerate(iter_sources(self.inputs, self.out_dir)):
            item = readable(str(source.path))
            digest = file_sha256(source.path)
            if digest is None:  # missing or unreadable: the image loader words the reason
                key = f"unreadable-{index}"
                stem = readable(source.path.stem) or "image"
                yield WorkItem(index, source.path, item, stem, key)
                continue
            key = f"{digest}-{self.fingerprint}"
            finished = self.manifest.done(key, item)
            if finished is not None:
                yield ItemOutcome(
                    item=item,
                    status="skipped",
                    reason="done in an earlier run",
                    backend=self.settings.llm.resolved_backend,
                    output=f"{finished.name}.json",
                    key=key,
                    name=finished.name,
                )
                continue
            if self.budget.reached or self.halted:
                reason = BUDGET_REASON if self.budget.reached else SETTING_REASON
                work = WorkItem(index, source.path, item, "", key)
                yield left_for_later(work, self.settings, reason)
                continue
            yield WorkItem(index, source.path, item, self._name_for(source, item, digest), key)

    def failure(self, work: WorkItem, exc: BaseException, seconds: float) -> ItemOutcome:
        """The outcome of an item whose run raised ``exc``."""
        from adapters.errors import ConfigError, NarrateError

        self.halted = self.halted or isinstance(exc, ConfigError)
        reason = str(exc) if isinstance(exc, NarrateError) else f"{type(exc).__name__}: {exc}"
        return ItemOutcome(
            item=work.item,
            status="failed",
            reason=readable(reason),  # it may quote a non-UTF-8 file name
            backend=self.settings.llm.resolved_backend,
            seconds=seconds,
            key=work.key,
            name=work.name,
        )

    def record(self, outcome: ItemOutcome) -> None:
        """Remember an outcome: manifest (ok/failed), summary row, counters, progress."""
        with self._lock:
            if outcome.status != "skipped" and not outcome.key.startswith("unreadable-"):
                self.manifest.append(
                    {
                        "key": outcome.key,
                        "status": outcome.status,
                        "item": outcome.item,
                        "name": outcome.name if outcome.status == "ok" else "",
                        "backend": outcome.backend,
                        "tokens": outcome.tokens,
                        "seconds": round(outcome.seconds, 3),
                        "reason": outcome.reason,
                        "settings": output_settings(self.settings, self.lang),
                        "time": time.time(),
                    }
                )
                if outcome.status == "ok":
                    self.manifest.drop_checkpoint(outcome.key)
            self._rows.write(json.dumps(outcome.row(), ensure_ascii=False) + "\n")
            self._rows.flush()
            self.counts[outcome.status] += 1
            self.tokens += outcome.tokens or 0
            # A server that sends no usage is charged an estimate, never nothing.
            used = outcome.tokens if outcome.tokens is not None else outcome.tokens_estimate
            self.budget.charge(used or 0)
            self.skipped_budget += outcome.reason == BUDGET_REASON
            self.skipped_setting += outcome.reason == SETTING_REASON
            done = self.done
        if outcome.status != "skipped":
            metrics.record_item("batch", outcome.status == "ok")
        for listener in [self.on_progress, *_LISTENERS]:
            if listener is not None:
                listener(done, self.total, outcome)

    def rows(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """The summary rows recorded so far (optionally of one status), read back from disk."""
        if not self._rows.closed:
            self._rows.flush()
        with open(self._rows_path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if status is None or row["status"] == status:
                    yield row

    def finish(self) -> BatchSummary:
        """Write ``summary.json`` and ``summary.csv`` (atomically) and return the counts."""
        self._rows.close()
        summary = BatchSummary(
            out_dir=self.out_dir,
            total=self.done,
            ok=self.counts["ok"],
            skipped=self.counts["skipped"],
            failed=self.counts["failed"],
            seconds=round(time.perf_counter() - self._started, 3),
            tokens=self.tokens,
            summary_json=self.out_dir / "summary.json",
            summary_csv=self.out_dir / "summary.csv",
            token_budget=self.budget.limit,
            skipped_budget=self.skipped_budget,
            skipped_setting=self.skipped_setting,
        )
        head = {k: v for k, v in summary.to_dict().items() if not k.startswith("summary_")}
        head["settings"] = output_settings(self.settings, self.lang)
        with atomic_write(summary.summary_json) as fh:
            fh.write(json.dumps(head, ensure_ascii=False, indent=2)[:-2] + ',\n  "items": [')
            for i, row in enumerate(self.rows()):
                fh.write(("," if i else "") + "\n    " + json.dumps(row, ensure_ascii=False))
            fh.write("\n  ]\n}\n")
        with atomic_write(summary.summary_csv, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
            writer.writeheader()
            writer.writerows(self.rows())
        return summary


def drive(
    batch: BatchRun,
    submit: Callable[[WorkItem], Any],
    *,
    limit: int,
) -> BatchSummary:
    """Run ``batch`` with at most ``limit`` items in flight; ``submit(work)`` returns a future.

    The futures only need ``add_done_callback(fn)`` and ``result()``: a
    ``concurrent.futures.Future`` or a ``PrefectFuture``. A failed future fails its item only.
    """
    finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
    pending: dict[int, tuple[WorkItem, float]] = {}

    def collect_one() -> None:
        future = finished.get()
        work, started = pending.pop(id(future))
        try:
            outcome = future.result()
        except Exception as exc:
            outcome = batch.failure(work, exc, time.perf_counter() - started)
        batch.record(outcome)

    for planned in batch.plan():
        if isinstance(planned, ItemOutcome):
            batch.record(planned)
            continue
        future = submit(planned)
        pending[id(future)] = (planned, time.perf_counter())
        future.add_done_callback(finished.put)
        while len(pending) >= max(1, limit):
            collect_one()
    while pending:
        collect_one()
    return batch.finish()


def run_direct(
    inputs: str | Path | Sequence[str | Path],
    out_dir: Path,
    *,
    settings: Settings,
    lang: str = "auto",
    concurrency: int = 8,
    on_progress: ProgressListener | None = None,
    token_budget: int | None = None,
) -> BatchSummary:
    """The batch without Prefect: plain step functions on a thread pool.

    The CLI's direct engine, and the baseline the benchmark compares the flow with.
    ``token_budget`` defaults to ``NARRATE_LLM_TOKEN_BUDGET``; the metrics go to the
    Pushgateway at the end when ``NARRATE_METRICS_PUSHGATEWAY`` is set, as the flow's do.
    """
    from concurrent.futures import ThreadPoolExecutor

    from narrate.pipeline.sequence import plain_steps

    batch = BatchRun(
        inputs, out_dir, settings=settings, lang=lang, on_progress=on_progress,
        token_budget=token_budget,
    )  # fmt: skip
    steps = plain_steps(settings.llm.cache)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        summary = drive(
            batch,
            lambda work: pool.submit(
                process_item, work, out_dir=batch.out_dir, lang=lang, settings=settings,
                steps=steps, budget=batch.budget,
            ),
            limit=concurrency,
        )  # fmt: skip
    if settings.metrics.pushgateway:
        metrics.push_to_gateway(settings.metrics.pushgateway, job="narrate-batch")
    return summary
