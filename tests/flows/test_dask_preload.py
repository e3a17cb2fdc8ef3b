"""``flows.dask_preload`` on a real ``dask scheduler`` + ``dask worker --preload`` (the CLI).

The issue's own set-up: a long-lived cluster started by hand, a Prefect server both point at.
The workers build every step's adapter and load RapidOCR's models when they start; the
batch's tasks then build nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.flows.test_batch import WORDS, _adapter_loads, _count_adapter_loads
from tests.support.fake_llm import FakeLLMServer
from tests.support.word_images import text_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).parent / "dask")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _scheduler() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def _worker(address: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``dask worker --preload flows.dask_preload``, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [DASK, "worker", address, "--nworkers", "1", "--nthreads", "2", "--no-dashboard",
             "--preload", "flows.dask_preload"],
            env={**env, "PYTHONPATH": str(REPO_ROOT)}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _readied_here() -> dict[str, object]:
    """In a Dask worker: what the preload built before any task ran."""
    from narrate.config.settings import load_settings
    from narrate.pipeline import steps

    ocr = load_settings().ocr
    engine = steps._ocr_engine(ocr.engine, ocr.threads, ocr.deskew, ocr.timeout_s,
                               load_settings().max_image_pixels, ocr.min_confidence)  # fmt: skip
    rapid = engine.rapidocr if ocr.engine == "auto" else engine  # type: ignore[attr-defined]
    return {
        "task_engine": "prefect.task_engine" in sys.modules,
        "flow": "flows.batch" in sys.modules,
        "rapidocr_loaded": getattr(rapid, "_engine", None) is not None,
    }


@pytest.mark.slow
def test_preloaded_workers_are_ready_and_their_tasks_build_nothing(
    prefect_harness: None, counted_llm: FakeLLMServer, tmp_path: Path
) -> None:
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    from flows.batch import batch_describe

    folder = tmp_path / "in"
    for word in WORDS[:4]:
        text_image(folder / f"{word.lower()}.png", word)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "NARRATE_OCR_ENGINE": "auto"}  # fmt: skip
    os.environ["NARRATE_OCR_ENGINE"] = "auto"  # the flow's settings match the worker's
    try:
        with _scheduler() as address:
            worker = _worker(address, env, tmp_path / "worker.log")
            try:
                with Client(address, timeout=60) as client:
                    client.wait_for_workers(1, timeout=120)
                    readied = client.run(_readied_here)
                    client.run(_count_adapter_loads)
                    summary = batch_describe(
                        str(folder), out_dir=tmp_path / "out", concurrency=2, runner="dask",
                        dask_address=address,
                    )  # fmt: skip
                    loads = client.run(_adapter_loads)
            finally:
                worker.terminate()
                worker.wait(30)
    finally:
        del os.environ["NARRATE_OCR_ENGINE"]

    assert list(readied.values()) == [{"task_engine": True, "flow": True, "rapidocr_loaded": True}]
    assert (summary["ok"], summary["failed"]) == (4, 0)
    assert len(counted_llm.requests) == 4
    assert list(loads.values()) == [{}]  # the tasks reused what the preload built


@pytest.mark.slow
def test_a_preloaded_worker_without_a_prefect_server_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # no profile with an API URL either
    log = tmp_path / "worker.log"
    with _scheduler() as address:
        worker = _worker(address, env, log)
        try:
            deadline = time.monotonic() + 120
            while "Run preload setup" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # the setup's own imports
        finally:
            worker.terminate()
            worker.wait(30)
    said = [line for line in log.read_text().splitlines() if "narrate:" in line]
    assert len(said) == 1, said  # one line, and nothing readied ("narrate: worker ... ready")
    assert "ERROR" in said[0]
    assert "would record narrate's task runs on a throwaway Prefect server: set " \
        "PREFECT_API_URL=http://HOST:4200/api" in said[0]  # fmt: skip


def test_hydrated_task_runs_share_one_settings_object(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker does per task run: the settings are built the first time only."""
    import prefect.context
    from prefect.context import SettingsContext, hydrated_context, serialize_context

    from flows.dask_preload import share_settings_contexts

    monkeypatch.setattr(prefect.context, "SettingsContext", SettingsContext)  # restored after
    serialized = serialize_context()
    share_settings_contexts()
    wrapper = prefect.context.SettingsContext
    share_settings_contexts()
    assert prefect.context.SettingsContext is wrapper  # idempotent: one wrapper, not two
    contexts = []
    for _ in range(3):
        with hydrated_context(serialized):
            contexts.append(SettingsContext.get())
    assert all(isinstance(c, SettingsContext) for c in contexts)
    assert len({id(c) for c in contexts}) == 3  # each run enters a context of its own
    assert len({id(c.settings) for c in contexts}) == 1  # built once, then reused
    built_anew = SettingsContext(**serialized["settings_context"]).settings  # Prefect's way
    assert contexts[0].settings.model_dump(mode="json") == built_anew.model_dump(mode="json")


def test_a_step_that_cannot_be_readied_is_named_and_the_rest_are_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from narrate.config.settings import load_settings
    from narrate.pipeline import steps

    monkeypatch.setenv("NARRATE_TTS_VOICE_EN", "no-such-voice-xx")
    monkeypatch.setenv("NARRATE_OCR_ENGINE", "tesseract")
    settings = load_settings()
    failures = steps.ready_process(settings)
    assert len(failures) == 1 and failures[0].startswith("tts: "), failures
    assert "no-such-voice-xx" in failures[0]
    ocr = settings.ocr
    before = steps._ocr_engine.cache_info().hits  # type: ignore[attr-defined]
    steps._ocr_engine(ocr.engine, ocr.threads, ocr.deskew, ocr.timeout_s,
                      settings.max_image_pixels, ocr.min_confidence)  # fmt: skip
    assert steps._ocr_engine.cache_info().hits == before + 1  # type: ignore[attr-defined]
