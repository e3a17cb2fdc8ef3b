"""How a flow run ends and is named: what a person reads first on the Prefect UI's run page.

A flow that returns a ``State`` ends in that state (Prefect's ``return_value_to_state``), and
a caller of the flow still gets the state's data back, or its exception raised. So:

- a finished run is ``Completed`` with the opening of what it produced as its message;
- bad input (``InputError``, ``ConfigError``) ends the run ``Failed`` with the one-line
  reason as its message and no traceback in the logs (raising would log two tracebacks of
  mostly Prefect internals; ``BadInputTracebackFilter`` drops the one a deployment's flow
  process still logs after the run); the caller still gets the ``InputError`` raised;
- a batch with failed images ends ``Completed with failures`` (see ``batch_state``).

On the console each failure is one line. Where narrate prints it itself (the CLI, which
sets ``CLI_REPORTS_FAILURES``), Prefect's records of the failed run stay off the console
(``RunFailureConsoleFilter``) and still reach the Prefect server, whose UI shows them.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

from prefect.states import Completed, Failed

from adapters.errors import ConfigError, InputError

R = TypeVar("R")

BAD_INPUT: tuple[type[Exception], ...] = (InputError, ConfigError)
# Set (to "1") by the CLI: it prints every failure itself, as one line naming the file.
# Dask worker processes started by the flow inherit it and keep the same console quiet.
CLI_REPORTS_FAILURES = "NARRATE_CLI_REPORTS_FAILURES"
MESSAGE_CHARS = 160  # the run page's header shows about this much on one line
PARTIAL = "Completed with failures"


def opening(text: str, limit: int = MESSAGE_CHARS) -> str:
    """The start of ``text`` on one line, cut at a word (or character, for CJK) with ``…``.

    Args:
        text: a description or an answer.
        limit: at most this many characters, the ellipsis included.

    Returns:
        The whole text when it fits, else its first ``limit - 1`` characters and ``…``.
    """
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def completed(result: R, message: str) -> R:
    """End the flow run ``Completed`` with ``message``; callers of the flow get ``result``.

    Args:
        result: what the flow returns to Python callers.
        message: the state message the UI shows at the top of the run page.

    Returns:
        A ``Completed`` state carrying ``result``, typed as ``result`` because Prefect hands
        callers the data, not the state.
    """
    state: Any = Completed(message=message, data=result)
    return state


def bad_input(exc: Exception) -> Any:
    """End the flow run ``Failed`` with the one-line reason, and no traceback in its logs.

    Args:
        exc: an ``InputError`` or ``ConfigError``; Python callers of the flow get it raised.

    Returns:
        The ``Failed`` state for the flow to return.
    """
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    # the reason in the run's logs too, as one line: a bad input found before any task ran
    # (an empty or oversized file) would otherwise leave the logs without it
    try:
        get_run_logger().error("%s", exc)
    except MissingContextError:  # called outside a flow run (tests, helpers)
        logging.getLogger("narrate.flows").error("%s", exc)
    return Failed(message=str(exc), data=exc)


class BadInputTracebackFilter(logging.Filter):
    """Keeps Prefect's tracebacks of bad input out of the run's logs.

    A deployment's flow process (``python -m prefect.engine``) re-raises the exception of a
    run that ended ``Failed`` and logs it as "Engine execution exited with unexpected
    exception" with the whole traceback, although the run already ended with the reason as
    its state message. For ``InputError`` and ``ConfigError`` that record is dropped and any
    other record loses its traceback; every other exception keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the engine's wrapper record of bad input; strips other such tracebacks.

        Also drops an empty ``exc_info`` (logged with ``exc_info=True`` outside an ``except``,
        as Prefect's task engine does when a task returns a ``Failed`` state), which Python
        would print as a stray ``NoneType: None`` line.
        """
        if record.exc_info == (None, None, None):
            record.exc_info = None
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, BAD_INPUT):
            return True
        if str(record.msg).startswith("Engine execution exited with unexpected exception"):
            return False
        record.exc_info, record.exc_text = None, None
        return True


class RunFailureConsoleFilter(logging.Filter):
    """Keeps the repeats of a failure off a console where narrate reports it as one line.

    A bad image under the CLI's Prefect engine was three ERROR lines from Prefect's task
    engine and narrate's own (the reason, "Task run failed with state: ...", "Finished in
    state Failed(...)"), plus the batch's "failed:" warning, before the CLI's line. This
    handler filter drops, from the console only: task and flow run records at ERROR and
    above, and their "Finished in state Failed" (or a batch's "... Completed with failures",
    which quotes the first failure; the CLI prints its own summary); and narrate's records
    of what the CLI prints itself (logged with ``extra={"cli_says_it": True}``). A record
    that carries the traceback of an exception other than bad input is kept: that is a bug
    to see. A task run's "Finished in state Completed()" is dropped too: the CLI's progress
    bar counts each image, and a batch of a thousand images printed a thousand such lines
    between its updates. The flow run's own lines (its start, its URL in the UI, its end)
    stay. The server still gets every record (Prefect's API handler sits on the run
    loggers).
    """

    RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record that repeats what narrate reports on this console."""
        if getattr(record, "cli_says_it", False):
            return False
        if record.name not in self.RUN_LOGGERS:
            return True
        if record.name == "prefect.task_runs" and str(record.msg).startswith(
            "Finished in state Completed("
        ):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and not isinstance(exc, BAD_INPUT):
            return True
        return record.levelno < logging.ERROR and not str(record.msg).startswith(
            ("Finished in state Failed", f"Finished in state {PARTIAL}")
        )


@functools.cache
def quiet_bad_input_tracebacks() -> None:
    """Install ``BadInputTracebackFilter`` on Prefect's run and engine loggers (once).

    Under the CLI (``CLI_REPORTS_FAILURES`` set) it also installs ``RunFailureConsoleFilter``
    on this process's console handlers: in a Dask worker the flow started, too.
    """
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
        logging.getLogger(name).addFilter(BadInputTracebackFilter())
    if os.environ.get(CLI_REPORTS_FAILURES):
        leave_failures_to_the_cli()


def leave_failures_to_the_cli() -> None:
    """Install ``RunFailureConsoleFilter`` on the console handlers of this process (once each).

    The console handlers are the stream handlers of the root logger (Prefect's
    ``PrefectConsoleHandler``; the API handler is not one).
    """
    for handler in logging.getLogger().handlers:
        is_console = isinstance(handler, logging.StreamHandler)
        if is_console and not any(isinstance(f, RunFailureConsoleFilter) for f in handler.filters):
            handler.addFilter(RunFailureConsoleFilter())


def batch_state(
    result: R, *, ok: int, skipped: int, failed: int, first: str | None, left: int = 0
) -> R:
    """The final state of a batch: ``N ok, M failed`` and whether anything failed, visibly.

    Failures with successes end ``Completed with failures``: a COMPLETED state under its
    own name. The run list, the run page's badge and ``prefect flow-run ls`` print that
    name, so it reads as not clean at a glance, while automations, ``--watch`` exit codes
    and deployment health still count the night's batch as done (the failed images are
    reported one by one and retried on the next run). When every image tried failed, the
    run is ``Failed``: nothing was produced.

    Args:
        result: the batch summary callers get back.
        ok: images described now.
        skipped: images whose own outputs an earlier run already wrote.
        failed: images that failed.
        first: the first failure's one-line reason, if any.
        left: images left for a later run (token budget reached, a wrong setting).

    Returns:
        The state for the flow to return, typed as ``result`` (callers get the data).
    """
    state: Any
    message = f"{ok} ok, {failed} failed"
    if skipped:
        message += f", {skipped} skipped (done before)"
    if left:
        message += f", {left} left for a later run"
    if first:
        message += f"; first failure: {opening(first, 120)}"
    if failed and not (ok or skipped):
        state = Failed(message=message, data=result)
    elif failed:
        state = Completed(name=PARTIAL, message=message, data=result)
    else:
        state = Completed(message=message, data=result)
    return state  # type: ignore[no-any-return]


# -- run names: parameters as a person says them, not as reprs ---------------------------


def _parameters() -> dict[str, Any]:
    from prefect.runtime import flow_run

    return dict(flow_run.parameters or {})


def _file_name(value: Any) -> str:
    return Path(str(value)).name or str(value)


def describe_run_name() -> str:
    """``describe receipt_en.png``."""
    return f"describe {_file_name(_parameters().get('image_path', '?'))}"


def voice_qa_run_name() -> str:
    """``ask about receipt_en.png: What is the total?`` or ``... (spoken: q.wav)``."""
    params = _parameters()
    name = f"ask about {_file_name(params.get('image_path', '?'))}"
    if params.get("question_audio"):
        return f"{name} (spoken: {_file_name(params['question_audio'])})"
    if params.get("question_text"):
        return f"{name}: {opening(str(params['question_text']), 60)}"
    return name


def _images_phrase(images: Any) -> str:
    if isinstance(images, str | Path):
        return str(images)
    names = [_file_name(i) for i in images or []]
    if len(names) <= 2:
        return ", ".join(names) or "no images"
    return f"{len(names)} images ({names[0]}, ...)"


def batch_run_name() -> str:
    """``batch assets/samples`` or ``batch 12 images (a.png, ...)``."""
    return f"batch {_images_phrase(_parameters().get('inputs'))}"


def ab_compare_run_name() -> str:
    """``compare temperature-0.3 vs temperature-0.7 on 2 images``."""
    from flows.ab_compare import DEFAULT_VARIANTS
    from narrate.pipeline.compare import variant_label

    params = _parameters()
    labels = [variant_label(v) for v in params.get("variants") or DEFAULT_VARIANTS]
    shown = " vs ".join(opening(label, 40) for label in labels[:3])
    if len(labels) > 3:
        shown += f" (+{len(labels) - 3} more)"
    images = params.get("images") or []
    count = len(images) if isinstance(images, list) else 1
    return f"compare {shown} on {count} image{'s' if count != 1 else ''}"
