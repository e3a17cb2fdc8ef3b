"""``narrate describe`` as a user runs it: a real process, good and bad inputs together."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from narrate.cli.main import _ProgressBar
from narrate.pipeline.batch import ItemOutcome
from tests.support.fake_llm import FakeLLMServer
from tests.support.prefect_server import free_port
from tests.support.wavcheck import wav_stats


def narrate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process, offline, and capture what it prints."""
    full_env = {**os.environ, "NARRATE_LLM_BACKEND": "offline", **env}
    return subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_lists_commands_and_settings(tmp_path: Path) -> None:
    run = narrate("describe", "--help", cwd=tmp_path)
    assert run.returncode == 0
    assert "--lang {auto,en,zh}" in run.stdout and "NARRATE_LLM_BACKEND" in run.stdout


def test_python_dash_m_narrate_is_the_command(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "narrate", "describe", "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "--lang {auto,en,zh}" in run.stdout


@pytest.mark.slow
def test_good_and_bad_images_in_one_call(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "letter.jpg"
    text.write_text("Dear Sir, this is plain text.")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes((SAMPLES_DIR / "receipt_en.png").read_bytes()[:2000])
    receipt = tmp_path / "receipt.png"
    shutil.copy(SAMPLES_DIR / "receipt_en.png", receipt)

    run = narrate(
        "describe", str(empty), str(receipt), str(text), str(truncated), "missing.gif",
        "--out", "out", cwd=tmp_path,
    )  # fmt: skip

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "empty.png: file is empty" in run.stderr
    assert "letter.jpg: not an image file: looks like a text file" in run.stderr
    assert "cut.png: image data is truncated or corrupt" in run.stderr
    assert "missing.gif: file not found" in run.stderr
    assert "4 image(s) failed" in run.stderr
    assert "1 of 5 image(s) described" in run.stdout
    assert "CORNER CAFE" in run.stdout
    duration, rms = wav_stats(tmp_path / "out" / "receipt.wav")
    assert duration > 1 and rms > 0.01
    saved = json.loads((tmp_path / "out" / "receipt.json").read_text())
    assert "TOTAL 7.20" in saved["ocr_text"]
    assert not (tmp_path / "out" / "empty.wav").exists()


@pytest.mark.slow
def test_json_output_is_machine_readable(tmp_path: Path) -> None:
    run = narrate(
        "describe", str(SAMPLES_DIR / "notice_zh.png"), "nope.png", "--json", "--out", "o",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1
    records = json.loads(run.stdout)  # nothing else on stdout
    assert [r["ok"] for r in records] == [True, False]
    assert records[0]["language"] == "zh" and "停车场" in records[0]["ocr_text"]
    assert records[0]["audio_path"].endswith("o/notice_zh.wav")
    assert records[1]["error"] == "nope.png: file not found"


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    run = narrate(
        "describe", str(SAMPLES_DIR / "receipt_en.png"), cwd=tmp_path, NARRATE_LLM_BACKEND="gpt"
    )
    assert run.returncode == 1
    assert run.stderr.strip().startswith("narrate: error: invalid setting: NARRATE_LLM_BACKEND")
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [("doctor", "--only", "tesseract"), ("doctor", "--json"), ("describe", "nope.png", "--json")],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """``narrate ... | head -1``: the pipe's reader is gone before narrate prints."""
    env = {**os.environ, "NARRATE_LLM_BACKEND": "offline"}
    command = [sys.executable, "-m", "narrate.cli.main", *args]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the only reader: every write narrate makes now fails
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=300)
    assert "BrokenPipe" not in stderr and "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    assert code == 141  # as a shell reports a writer ended by SIGPIPE


@pytest.mark.parametrize(
    "args",
    [
        ("describe", "receipt.png", "other.png"),
        ("ask", "receipt.png", "--question", "What is the total?"),
        ("batch", "receipt.png"),
        ("batch", "receipt.png", "--runner", "dask"),
    ],
)
def test_an_unreachable_prefect_server_is_one_line_before_any_image(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "receipt.png")
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    run = narrate(*args, "--out", "out", cwd=tmp_path, PREFECT_API_URL=url)
    instead = (
        "drop --runner dask and use --engine direct" if "dask" in args else "use --engine direct"
    )
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"narrate: error: the Prefect server at {url} (PREFECT_API_URL) cannot be reached "
        "([Errno 111] Connection refused): start it (`make server` or `prefect server start`), "
        f"or {instead}"
    ]
    assert run.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_the_problem_not_the_image(tmp_path: Path, question: str) -> None:
    image = str(SAMPLES_DIR / "receipt_en.png")
    run = narrate("ask", image, "--question", question, "--out", "out", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == (
        "narrate ask: error: argument --question: the question is empty: type one, or speak it "
        "(--audio)"
    )
    assert "receipt_en" not in run.stderr and not (tmp_path / "out").exists()


def test_images_with_the_same_name_do_not_overwrite_each_other() -> None:
    from narrate.cli.main import _unique_stems

    help_text = " ".join(narrate("describe", "--help", cwd=Path.cwd()).stdout.split())
    assert "same stem are numbered in the order given: a/x.png b/x.jpg -> x, x-2" in help_text
    assert _unique_stems(["a/x.png", "b/x.jpg"]) == ["x", "x-2"]  # as --help and README say

    assert _unique_stems(["a/note.png", "b/note.jpg", "c/other.png", "note.gif"]) == [
        "note",
        "note-2",
        "other",
        "note-3",
    ]


def test_each_failure_is_reported_as_it_happens(capsys: pytest.CaptureFixture[str]) -> None:
    bar = _ProgressBar()
    reason = (
        "http://127.0.0.1:9/v1 (model qwen3-max) could not connect ([Errno 111]) — check the "
        "network and NARRATE_LLM_BASE_URL, or describe offline with NARRATE_LLM_BACKEND=offline"
    )
    bar(1, 3, ItemOutcome(item="a.png", status="ok"))
    bar(2, 3, ItemOutcome(item="b.png", status="failed", reason=reason))
    first = capsys.readouterr().err  # before the batch ends
    bar(3, 3, ItemOutcome(item="c.png", status="ok"))

    assert f"narrate: failed: b.png: {reason}" in first
    assert "a.png" not in first and first.count("failed: ") == 1


def test_a_prefect_server_that_goes_away_mid_run_is_named_not_the_image() -> None:
    from narrate.cli.main import _error_line

    # what Prefect's client raises (prefect/client/orchestration/__init__.py)
    exc = RuntimeError("Failed to reach API at http://127.0.0.1:4200/api/")
    line = _error_line(exc, debug=False, item=Path("receipt.png"))
    assert line == (
        "receipt.png: the Prefect server at http://127.0.0.1:4200/api/ stopped answering during "
        "the run: start it (`make server` or `prefect server start`) again and run the command "
        "again (finished outputs are kept), or use --engine direct"
    )
    assert "unexpected" not in line


def test_serve_with_an_unreachable_prefect_server_does_not_start(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    port = str(free_port())
    run = narrate("serve", "--port", port, cwd=tmp_path, PREFECT_API_URL=url)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"narrate serve: the Prefect server at {url} (PREFECT_API_URL) cannot be reached "
        "([Errno 111] Connection refused): start it (`make server` or `prefect server start`), "
        "or use --engine direct"
    ]


def test_a_wrong_setting_stops_describe_once_instead_of_failing_each_image(
    tmp_path: Path,
) -> None:
    for name in ("a.png", "b.png"):
        shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / name)
    run = narrate(
        "describe", "a.png", "b.png", "--out", "out", cwd=tmp_path,
        NARRATE_TTS_VOICE_EN="xx/no-such-voice",
    )  # fmt: skip
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith(
        "narrate: error: espeak-ng has no voice 'xx/no-such-voice' (NARRATE_"
    )
    assert lines[1] == "narrate: stopped; 2 image(s) not described"
    assert not (tmp_path / "out").exists()  # made for this run, left empty: removed


def test_ask_blames_a_wrong_setting_not_the_image(tmp_path: Path) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "r.png")
    run = narrate(
        "ask", "r.png", "--question", "what is the total?", "--out", "out", cwd=tmp_path,
        NARRATE_TTS_VOICE_EN="xx/no-such-voice",
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.startswith("narrate: error: espeak-ng has no voice 'xx/no-such-voice'")
    assert "r.png" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_batch_of_only_missing_paths_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    run = narrate("batch", "missing_dir/", "gone.png", "--out", "out", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "narrate: error: no such file or folder: missing_dir/, gone.png; nothing was done"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["empty", "scans/*.png"])
def test_a_batch_that_finds_no_image_says_so_and_creates_nothing(tmp_path: Path, spec: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "page.jpg").write_bytes(b"")  # a .jpg: the .png glob misses it
    (tmp_path / "empty" / "notes.txt").write_text("not an image", encoding="utf-8")
    run = narrate("batch", spec, "--out", "out", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"narrate: error: no image found in {spec} (folders are searched recursively for "
        ".bmp .gif .jpeg .jpg .png .tif .tiff .webp; a glob must match such files); "
        "nothing was done"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["describe", "batch"])
def test_an_out_that_is_a_file_is_refused_once_before_any_image(
    tmp_path: Path, command: str
) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "receipt.png")
    (tmp_path / "taken").write_text("not a folder", encoding="utf-8")
    run = narrate(command, "receipt.png", "receipt.png", "--out", "taken", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "narrate: error: the output folder taken is a file: give --out a folder"
    ]


@pytest.mark.parametrize(("given", "kept"), [(None, "false"), ("true", "true")])
def test_a_throwaway_prefect_server_reports_no_usage_unless_asked(
    monkeypatch: pytest.MonkeyPatch, given: str | None, kept: str
) -> None:
    """Offline, the temporary server's usage report fails as an ERROR line on the console."""
    from narrate.cli.main import _engine

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    if given is None:
        monkeypatch.delenv("PREFECT_SERVER_ANALYTICS_ENABLED", raising=False)
    else:
        monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", given)
    assert _engine("prefect") == "prefect"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == kept


def test_a_dask_address_without_the_dask_runner_is_refused(tmp_path: Path) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "r.png")
    run = narrate("batch", "r.png", "--dask-address", "tcp://127.0.0.1:8786", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == "narrate: --dask-address needs --runner dask"
    assert not (tmp_path / "narrate-out").exists()


def test_describe_on_a_folder_points_to_batch(tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    run = narrate("describe", "scans", "--out", "out", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == (
        "narrate: failed: scans: is a directory, not a file "
        "(`narrate batch scans` describes every image in it)"
    )


@pytest.mark.slow
def test_batch_on_dask_keeps_dasks_info_lines_off_the_console(tmp_path: Path) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "r.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_LOGGING")}
    env.pop("PREFECT_API_URL", None)  # a temporary server, as a new user gets
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "batch", "r.png", "--out", "out",
         "--runner", "dask", "--engine", "prefect"],
        cwd=tmp_path, env={**env, "NARRATE_LLM_BACKEND": "offline"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "1 described" in run.stdout
    dask_info = [
        line for line in run.stderr.splitlines()
        if "| INFO" in line and " - " in line and "distributed." in line.split(" - ")[0]
    ]  # fmt: skip
    assert dask_info == []


def _bad_and_good_images(folder: Path) -> list[str]:
    """A folder with one good image and three bad ones; their names."""
    folder.mkdir()
    shutil.copy(SAMPLES_DIR / "receipt_en.png", folder / "receipt.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "cut.png").write_bytes((SAMPLES_DIR / "receipt_en.png").read_bytes()[:2000])
    (folder / "notes.png").write_text("not a picture\n", encoding="utf-8")
    return ["empty.png", "cut.png", "notes.png"]


def _task_run_logs(flow_name: str) -> dict[str, tuple[str, str, list[str]]]:
    """The latest run of ``flow_name`` on the harness server: per task run name, its state
    type, state message and log lines."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        LogFilter,
        LogFilterTaskRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC, limit=1,
        )  # fmt: skip
        found = {}
        for task_run in client.read_task_runs():
            if task_run.flow_run_id != runs[0].id or task_run.state is None:
                continue
            logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run.id])))
            state = task_run.state
            found[task_run.name] = (
                state.type.value,
                state.message or "",
                [g.message for g in logs],
            )
    return found


@pytest.mark.slow
def test_a_bad_image_under_prefect_is_one_line_on_the_console_and_failed_in_the_ui(
    prefect_harness: None, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    bad = _bad_and_good_images(tmp_path / "in")
    api = str(PREFECT_API_URL.value())
    run = narrate(
        "batch", "in", "--out", "out", "--engine", "prefect", "--concurrency", "2",
        cwd=tmp_path, PREFECT_API_URL=api, PREFECT_LOGGING_LEVEL="INFO",
    )  # fmt: skip

    assert run.returncode == 1, run.stderr
    assert "1 described, 0 skipped (done before), 3 failed of 4" in run.stdout
    for name in bad:  # each bad image: narrate's line, nothing else repeats it
        said = [line for line in run.stderr.splitlines() if name in line and "[#" not in line]
        assert len(said) == 1 and said[0].startswith(f"narrate: failed: in/{name}: "), said
    assert "NoneType" not in run.stderr and "| ERROR" not in run.stderr, run.stderr
    assert "| WARNING" not in run.stderr, run.stderr
    assert "Task run 'receipt' - Finished in state Completed()" not in run.stderr  # the bar's
    assert "Flow run 'batch in' - Beginning flow run" in run.stderr, run.stderr
    # The Prefect UI still shows each bad image's task run Failed, with the reason.
    runs = _task_run_logs("batch-describe")
    assert runs["empty"][:2] == ("FAILED", "in/empty.png: file is empty (0 bytes)")
    assert "in/empty.png: file is empty (0 bytes)" in runs["empty"][2]
    assert runs["notes"][0] == "FAILED" and "not an image file" in runs["notes"][1]
    assert runs["receipt"][0] == "COMPLETED"


@pytest.mark.slow
def test_describe_under_prefect_says_a_bad_image_once(
    prefect_harness: None, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    _bad_and_good_images(tmp_path / "in")
    run = narrate(
        "describe", "in/cut.png", "in/receipt.png", "--out", "out", "--engine", "prefect",
        cwd=tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value()), PREFECT_LOGGING_LEVEL="INFO",
    )  # fmt: skip

    assert run.returncode == 1, run.stderr
    said = [line for line in run.stderr.splitlines() if "truncated" in line]
    assert len(said) == 1, run.stderr  # the reason once, not Prefect's task and flow lines too
    assert said[0].startswith("narrate: failed: in/cut.png: image data is truncated")
    assert "| ERROR" not in run.stderr, run.stderr
    assert "CORNER CAFE" in run.stdout


@pytest.mark.parametrize("engine", ["direct", pytest.param("prefect", marks=pytest.mark.slow)])
def test_a_glob_or_folder_that_names_no_image_is_a_warning_when_others_do(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    env = {}
    if engine == "prefect":
        request.getfixturevalue("prefect_harness")
        from prefect.settings import PREFECT_API_URL

        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "empty").mkdir()
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "a" / "receipt.png")
    (tmp_path / "b" / "scan.png").write_bytes(b"")  # a .png: the .jpg glob misses it
    run = narrate(
        "batch", "a/*.png", "b/*.jpg", "nothing/*.tif", "empty", "--out", "out",
        "--engine", engine, cwd=tmp_path, **env,
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "no image found" in line]
    assert warnings == [
        f"narrate: warning: no image found in {spec}; going on with the other inputs"
        for spec in ("b/*.jpg", "nothing/*.tif", "empty")
    ]
    assert "1 described, 0 skipped (done before), 0 failed of 1" in run.stdout
    assert "CORNER CAFE" in json.loads((tmp_path / "out" / "receipt.json").read_text())["ocr_text"]


def test_ask_with_two_images_says_what_is_wrong_with_ask(tmp_path: Path) -> None:
    run = narrate("ask", "a.png", "b.png", "--question", "What is the total?", cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert lines[0].startswith("usage: narrate ask ")  # ask's usage, not narrate's
    assert lines[-1] == (
        "narrate ask: error: ask takes one IMAGE, got 2 (a.png, b.png): ask about one image "
        "at a time"
    )
    unknown = narrate("doctor", "--nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[0].startswith("usage: narrate doctor ")
    assert (
        unknown.stderr.splitlines()[-1] == "narrate doctor: error: unrecognized arguments: --nope"
    )


@pytest.mark.parametrize("command", ["ask", "describe"])
def test_a_wrong_voice_is_refused_before_the_llm_is_asked(
    tmp_path: Path, fake_llm: FakeLLMServer, command: str
) -> None:
    shutil.copy(SAMPLES_DIR / "receipt_en.png", tmp_path / "r.png")
    question = ["--question", "What is the total?"] if command == "ask" else []
    run = narrate(
        command, "r.png", *question, "--out", "out", cwd=tmp_path,
        NARRATE_LLM_BACKEND="openai", NARRATE_LLM_BASE_URL=fake_llm.base_url,
        NARRATE_CACHE_BACKEND="off", NARRATE_TTS_VOICE_EN="xx/no-such-voice",
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.startswith("narrate: error: espeak-ng has no voice 'xx/no-such-voice'")
    assert len(run.stderr.splitlines()) == (1 if command == "ask" else 2)  # + "stopped; ..."
    assert fake_llm.requests == []  # nothing was spent on an answer that cannot be spoken
    assert not (tmp_path / "out").exists()
