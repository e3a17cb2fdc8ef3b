"""How runs end and what their artifacts link: the pure parts, without a Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import InputError
from flows._outcome import PARTIAL, bad_input, batch_state, completed, opening
from flows.artifacts import file_markdown, public_url
from narrate.config.settings import OutputSettings, Settings


def test_opening_keeps_short_text_and_cuts_long_text_at_a_word() -> None:
    assert opening("A receipt  from\nCORNER CAFE.") == "A receipt from CORNER CAFE."
    long = "The receipt lists coffee and cake " * 10
    cut = opening(long, 60)
    assert len(cut) <= 60 and cut.endswith("…") and long.startswith(cut[:-1])
    assert not cut[:-1].endswith(" ")
    chinese = "停车场收费标准" * 40  # no spaces: cut by character
    assert opening(chinese, 20) == chinese[:19] + "…"


def test_completed_and_failed_states_carry_the_result_or_the_error() -> None:
    state = completed({"ok": 1}, "a receipt")
    assert state.is_completed() and state.message == "a receipt"
    error = InputError("/data/x.png", "file is empty (0 bytes)")
    failed = bad_input(error)
    assert failed.is_failed() and failed.message == "/data/x.png: file is empty (0 bytes)"
    with pytest.raises(InputError, match="file is empty"):
        failed.result()


def test_batch_state_names_a_partial_failure_and_fails_when_nothing_worked() -> None:
    clean = batch_state({}, ok=3, skipped=1, failed=0, first=None)
    assert clean.name == "Completed"
    assert clean.message == "3 ok, 0 failed, 1 skipped (done before)"

    partial = batch_state({}, ok=3, skipped=0, failed=1, first="b.png: not an image")
    assert partial.is_completed() and partial.name == PARTIAL
    assert partial.message == "3 ok, 1 failed; first failure: b.png: not an image"

    nothing = batch_state({"ok": 0}, ok=0, skipped=0, failed=2, first="a.png: empty")
    assert nothing.is_failed() and nothing.message.startswith("0 ok, 2 failed")
    assert nothing.result(raise_on_failure=False) == {"ok": 0}

    # a wrong setting: 2 tried and failed, 10 never tried; none of them was done before
    halted = batch_state({}, ok=0, skipped=0, failed=2, first="espeak-ng has no voice", left=10)
    assert halted.is_failed()
    assert halted.message.startswith("0 ok, 2 failed, 10 left for a later run; first failure")


def test_files_are_links_under_the_served_folder_else_absolute_paths(tmp_path: Path) -> None:
    served = tmp_path / "out"
    wav = served / "night shift" / "scan 1.wav"
    image = tmp_path / "in" / "scan 1.png"
    plain = Settings(out_dir=served)
    assert public_url(wav, plain) is None
    assert file_markdown(wav, plain) == f"`{wav.resolve()}` (on the worker)"

    linked = Settings(out_dir=served, output=OutputSettings(base_url="http://files.lan/n/"))
    assert public_url(wav, linked) == "http://files.lan/n/night%20shift/scan%201.wav"
    assert file_markdown(wav, linked) == (
        "[scan 1.wav](http://files.lan/n/night%20shift/scan%201.wav)"
    )
    assert public_url(image, linked) is None  # outside the served folder

    elsewhere = Settings(
        out_dir=served,
        output=OutputSettings(base_url="http://files.lan", public_dir=tmp_path),
    )
    assert public_url(image, elsewhere) == "http://files.lan/in/scan%201.png"


def test_bad_input_loses_its_traceback_in_the_logs_and_other_errors_keep_theirs() -> None:
    import logging
    import sys

    from flows._outcome import BadInputTracebackFilter

    def record(msg: str, exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:
            info = sys.exc_info()
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, msg, (), info)

    quiet = BadInputTracebackFilter()
    bad = InputError("/data/x.png", "file is empty (0 bytes)")
    assert not quiet.filter(record("Engine execution exited with unexpected exception", bad))
    task_record = record("Task run failed with exception", bad)
    assert quiet.filter(task_record) and task_record.exc_info is None
    surprise = record("Engine execution exited with unexpected exception", RuntimeError("bug"))
    assert quiet.filter(surprise) and surprise.exc_info is not None


def test_a_run_failure_stays_off_the_cli_console_unless_it_is_a_bug() -> None:
    import logging
    import sys

    from flows._outcome import BadInputTracebackFilter, RunFailureConsoleFilter

    def record(name: str, level: int, msg: str, exc: Exception | None = None) -> logging.LogRecord:
        info = None
        if exc is not None:
            try:
                raise exc
            except Exception:
                info = sys.exc_info()
        return logging.LogRecord(name, level, __file__, 1, msg, (), info)

    # logged with exc_info=True outside an except: Python would print "NoneType: None"
    empty = logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "m", (), None)
    empty.exc_info = (None, None, None)
    assert BadInputTracebackFilter().filter(empty) and empty.exc_info is None

    console = RunFailureConsoleFilter()
    bad = InputError("/data/x.png", "file is empty (0 bytes)")
    assert not console.filter(record("prefect.task_runs", logging.ERROR, "x.png: file is empty"))
    assert not console.filter(
        record("prefect.flow_runs", logging.INFO, "Finished in state Failed('x')")
    )
    assert not console.filter(record("prefect.task_runs", logging.ERROR, "failed", bad))
    item = record("narrate.batch", logging.WARNING, "failed: x.png: file is empty")
    item.cli_says_it = True
    assert not console.filter(item)
    # kept: a bug's traceback, the run's progress, everything else
    assert console.filter(record("prefect.task_runs", logging.ERROR, "failed", RuntimeError("bug")))
    assert console.filter(
        record("prefect.flow_runs", logging.INFO, "Finished in state Completed()")
    )
    # an image done: the CLI's progress bar counts it
    assert not console.filter(
        record("prefect.task_runs", logging.INFO, "Finished in state Completed()")
    )
    assert console.filter(record("prefect.client", logging.ERROR, "server gone"))
