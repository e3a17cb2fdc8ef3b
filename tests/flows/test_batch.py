"""The batch flow on real parts: good and bad images, reruns, a SIGKILL mid-way, Dask.

LLM calls go to the loopback fake server, which records every request; each test image
carries its own word (ALPHA, BRAVO, ...), which OCR reads and the prompt quotes, so the
requests can be counted per image.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assets import SAMPLES_DIR
from tests.support.fake_llm import FakeLLMServer
from tests.support.wavcheck import wav_stats
from tests.support.word_images import (
    read_csv,
    requests_for,
    text_image,
)

WORDS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL")
REPO_ROOT = Path(__file__).resolve().parents[2]


# -- fast: inputs, names, manifest ---------------------------------------------------------


# -- the flow ------------------------------------------------------------------------------


def _artifact_data(key: str, field: str = "data") -> str:
    """A field of the latest artifact with ``key`` (other tests' batches make some too)."""
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None, f"no artifact {key}"
    return str(getattr(artifact, field))


@pytest.mark.slow
def test_batch_flow_good_and_bad_images_then_a_rerun_skips_everything(
    prefect_harness: None,
    tmp_path: Path,
    counted_llm: FakeLLMServer,
) -> None:
    from flows.batch import batch_describe

    folder = tmp_path / "in"
    text_image(folder / "north" / "note.png", "ALPHA")
    text_image(folder / "south" / "note.png", "BRAVO")  # same stem, other folder
    shutil.copy(SAMPLES_DIR / "receipt_en.png", folder / "receipt.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "letter.jpg").write_text("Dear Sir, this is plain text.")
    (folder / "readme.txt").write_text("not an image: ignored")
    out = tmp_path / "out"

    summary = batch_describe(str(folder), out_dir=out, concurrency=3)

    assert (summary["total"], summary["ok"], summary["failed"], summary["skipped"]) == (5, 3, 2, 0)
    for name, word in (("north/note", "ALPHA"), ("south/note", "BRAVO")):
        result = json.loads((out / f"{name}.json").read_text())
        assert word in result["ocr_text"] and "fake answer" in result["description"]
        assert result["backend"] == "openai"
        duration, rms = wav_stats(out / f"{name}.wav")
        assert duration > 0.5 and rms > 0.01
    assert "CORNER CAFE" in json.loads((out / "receipt.json").read_text())["ocr_text"]
    assert len(counted_llm.requests) == 3
    assert len(requests_for(counted_llm, "ALPHA")) == len(requests_for(counted_llm, "BRAVO")) == 1

    rows = {Path(r["item"]).name: r for r in read_csv(out / "summary.csv")}
    assert set(rows) == {"note.png", "receipt.png", "empty.png", "letter.jpg"}  # notes x2
    assert rows["empty.png"]["status"] == "failed"
    assert "empty.png: file is empty" in rows["empty.png"]["reason"]
    assert "letter.jpg: not an image file: looks like a text file" in rows["letter.jpg"]["reason"]
    assert rows["receipt.png"]["status"] == "ok" and int(rows["receipt.png"]["tokens"]) > 0
    assert rows["receipt.png"]["backend"] == "openai" and rows["receipt.png"]["output"]
    report = json.loads((out / "summary.json").read_text())
    assert report["ok"] == 3 and len(report["items"]) == 5
    assert {i["output"] for i in report["items"] if i["status"] == "ok"} == {
        "north/note.json",
        "south/note.json",
        "receipt.json",
    }
    table = _artifact_data("batch-summary")
    assert "file is empty" in table and "receipt.png" in table
    assert float(_artifact_data("batch-progress")) == 100.0
    progress = _artifact_data("batch-progress", "description")  # failures as they happened
    assert "empty.png: file is empty" in progress and "letter.jpg" in progress

    again = batch_describe(str(folder), out_dir=out, concurrency=3)

    assert (again["ok"], again["skipped"], again["failed"]) == (0, 3, 2)
    assert len(counted_llm.requests) == 3  # not one new LLM call
    statuses = {r["status"] for r in read_csv(out / "summary.csv") if r["item"].endswith(".png")}
    assert "skipped" in statuses
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["status"] == "ok" for line in lines) == 3  # skips add no line


@pytest.mark.slow
def test_run_killed_mid_way_resumes_without_repeating_llm_calls(
    prefect_harness: None, tmp_path: Path, fake_llm_factory: Callable[..., FakeLLMServer]
) -> None:
    from prefect.settings import get_current_settings

    latency_s = 1.0
    fake = fake_llm_factory(latency_s=latency_s)
    words = WORDS[:6]
    folder = tmp_path / "in"
    for word in words:
        text_image(folder / f"{word.lower()}.png", word)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "NARRATE_LLM_BACKEND": "openai",
        "NARRATE_LLM_BASE_URL": fake.base_url,
        "NARRATE_LLM_QPS": "0",
        "NARRATE_CACHE_BACKEND": "off",
    }
    command = [sys.executable, "-m", "narrate.cli.main", "batch", str(folder), "--out", str(out)]
    command += ["--concurrency", "2"]
    manifest = out / "manifest.jsonl"

    first = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if manifest.exists() and manifest.read_text().count('"status": "ok"') >= 2:
                break
            time.sleep(0.05)
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(30)
    assert first.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    finished_before = manifest.read_text().count('"status": "ok"')
    assert 2 <= finished_before < len(words)
    # Answers that arrived well before the kill had been saved (manifest or checkpoint).
    safe = killed_at - latency_s - 0.3
    answered = {w for w in words if any(t < safe for t in requests_for(fake, w))}
    before = {w: len(requests_for(fake, w)) for w in words}

    resumed = subprocess.run(
        [*command, "--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    assert summary["skipped"] >= finished_before
    assert summary["ok"] + summary["skipped"] == len(words) and summary["failed"] == 0
    after = {w: len(requests_for(fake, w)) - before[w] for w in words}
    assert all(after[w] == 0 for w in answered), (answered, after)  # never asked again
    assert all(n <= 1 for n in after.values()), after  # and never twice in the resume
    for word in words:
        assert word in json.loads((out / f"{word.lower()}.json").read_text())["ocr_text"]


@pytest.mark.slow
def test_batch_on_a_dask_local_cluster(
    prefect_harness: None, offline_env: None, tmp_path: Path
) -> None:
    from flows.batch import batch_describe

    folder = tmp_path / "in"
    text_image(folder / "one.png", "HOTEL")
    shutil.copy(SAMPLES_DIR / "notice_zh.png", folder / "two.png")
    (folder / "empty.png").write_bytes(b"")  # its InputError comes back from a worker

    state = batch_describe(
        str(folder), out_dir=tmp_path / "out", concurrency=2, runner="dask", return_state=True
    )
    summary = state.result()

    assert (summary["ok"], summary["failed"]) == (2, 1)
    failed = [r for r in read_csv(tmp_path / "out" / "summary.csv") if r["status"] == "failed"]
    assert [r["item"].endswith("empty.png") for r in failed] == [True]
    assert failed[0]["reason"].endswith("empty.png: file is empty (0 bytes)")
    assert "first failure: " in state.message and "file is empty (0 bytes)" in state.message
    assert "HOTEL" in json.loads((tmp_path / "out" / "one.json").read_text())["description"]
    assert "停车场" in json.loads((tmp_path / "out" / "two.json").read_text())["ocr_text"]
    assert wav_stats(tmp_path / "out" / "two.wav")[0] > 0.5


@pytest.mark.slow
def test_cli_batch_direct_engine_progress_and_exit_status(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    text_image(folder / "echo.png", "ECHO")
    (folder / "broken.png").write_bytes((SAMPLES_DIR / "receipt_en.png").read_bytes()[:2000])
    env = {**os.environ, "NARRATE_LLM_BACKEND": "offline"}

    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli.main", "batch", str(folder), "--out", "out",
         "--engine", "direct"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert run.returncode == 1
    assert "2/2 (1 ok, 0 skipped, 1 failed)" in run.stderr
    failed = [line for line in run.stderr.splitlines() if line.startswith("narrate: failed: ")]
    assert len(failed) == 1 and "broken.png" in failed[0]  # printed when it failed
    assert "1 described, 0 skipped (done before), 1 failed of 2" in run.stdout
    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert {r["status"] for r in rows} == {"ok", "failed"}
    assert "ECHO" in json.loads((tmp_path / "out" / "echo.json").read_text())["description"]


def test_existing_dask_cluster_without_a_prefect_server_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from adapters.errors import ConfigError
    from flows.batch import task_runner_for

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        pytest.raises(ConfigError, match=r"tcp://127\.0\.0\.1:8786.*PREFECT_API_URL=.*dask worker"),
    ):
        task_runner_for("dask", 2, "tcp://127.0.0.1:8786")


def test_local_dask_workers_get_the_flows_api_url() -> None:
    from flows.batch import local_cluster_kwargs

    kwargs = local_cluster_kwargs(8, "http://127.0.0.1:4321/api")
    assert kwargs["processes"] is True
    assert kwargs["env"]["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
    assert kwargs["n_workers"] * kwargs["threads_per_worker"] >= 8
    # the worker processes share the cores for OCR and features instead of each taking all
    cores = os.cpu_count() or 1
    assert kwargs["n_workers"] * int(kwargs["env"]["NARRATE_CPU_SLOTS"]) <= max(cores, 2)
    assert kwargs["config"]["distributed"]["worker"]["profile"]["enabled"] is False
    assert "admin" in kwargs["config"]["distributed"]  # the rest of the config goes too


@pytest.mark.slow
def test_a_second_local_cluster_does_not_warn_about_port_8787(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """The scheduler serves its HTTP routes on 8787 by default, dashboard or not."""
    import socket

    from distributed import LocalCluster

    from flows.batch import local_cluster_kwargs

    kwargs = {**local_cluster_kwargs(2, None), "n_workers": 0, "preload": []}
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass  # something here holds 8787 already: as good
        with LocalCluster(**kwargs):
            pass
    assert not [w for w in recwarn if "already in use" in str(w.message)]


def _count_adapter_loads() -> None:
    """In a Dask worker: count every adapter ``registry.load`` from now on."""
    from collections import Counter

    from adapters import registry

    loads: Counter[str] = Counter()
    original = registry.load

    def counted(capability: str, name: str, **kwargs: object) -> object:
        loads[f"{capability}:{name}"] += 1
        return original(capability, name, **kwargs)  # type: ignore[call-overload]

    registry.load = counted  # type: ignore[assignment]
    registry.loads_seen = loads  # type: ignore[attr-defined]


def _adapter_loads() -> dict[str, int]:
    from adapters import registry

    return dict(registry.loads_seen)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_dask_workers_load_adapters_once_and_tasks_travel_small(
    prefect_harness: None, counted_llm: FakeLLMServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import cloudpickle
    import distributed
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL

    from flows.batch import batch_describe

    folder = tmp_path / "in"
    for word in WORDS:
        text_image(folder / f"{word.lower()}.png", word)
    payloads: list[tuple[int, int]] = []  # bytes pickled per task: all, our parameters
    submit = distributed.Client.submit

    def measured_submit(self: Client, func: object, *args: object, **kwargs: object) -> object:
        ours = len(cloudpickle.dumps(kwargs["parameters"]))
        payloads.append((len(cloudpickle.dumps((func, args, kwargs))), ours))
        return submit(self, func, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", measured_submit)
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "OMP_THREAD_LIMIT": "1"}
    with (
        LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                     env=env) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.run(_count_adapter_loads)
        summary = batch_describe(
            str(folder), out_dir=tmp_path / "out", concurrency=4, runner="dask",
            dask_address=cluster.scheduler_address,
        )  # fmt: skip
        loads = client.run(_adapter_loads)

    assert (summary["ok"], summary["failed"]) == (len(WORDS), 0)
    assert len(counted_llm.requests) == len(WORDS)
    assert len(loads) == 2  # two worker processes
    # Each worker process built each adapter at most once, whatever number of images it did.
    for worker, counts in loads.items():
        assert counts and all(n == 1 for n in counts.values()), (worker, counts)
    # What travels per task: the settings and the item (~2.6 kB), not a loaded model; the
    # rest (~20 kB) is Prefect's task and flow-run context.
    assert len(payloads) == len(WORDS)
    assert max(ours for _, ours in payloads) < 4_000, payloads
    assert max(total for total, _ in payloads) < 40_000, payloads


def _rapidocr_threads_here() -> dict[str, object]:
    """In a Dask worker: the RapidOCR engine narrate builds there, its onnxruntime threads."""
    import os

    from narrate.pipeline import steps

    auto = steps._ocr_engine("auto", 1, False, 60.0, 50_000_000, None)
    rapid = auto.rapidocr._load()  # type: ignore[attr-defined]
    sessions = [rapid._load_det_model(), rapid._load_rec_model()]
    return {
        "slots": os.environ.get("NARRATE_CPU_SLOTS"),
        "threads": auto.rapidocr.threads,  # type: ignore[attr-defined]
        "onnxruntime": {s.session.session.get_session_options().intra_op_num_threads
                        for s in sessions},
    }  # fmt: skip


@pytest.mark.slow
def test_local_dask_workers_run_rapidocr_on_their_share_of_the_cores() -> None:
    """Two worker processes on the cores: each RapidOCR session gets the worker's share only."""
    from distributed import Client, LocalCluster

    from flows.batch import local_cluster_kwargs

    kwargs = local_cluster_kwargs(4, None)
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        seen = client.run(_rapidocr_threads_here)

    share = int(kwargs["env"]["NARRATE_CPU_SLOTS"])
    assert share * kwargs["n_workers"] <= max(os.cpu_count() or 1, 2)
    assert len(seen) == kwargs["n_workers"]
    for worker, found in seen.items():
        assert found == {"slots": str(share), "threads": share, "onnxruntime": {share}}, worker


def _worker_origin() -> dict[str, object]:
    """In a Dask worker: its parent process, Prefect's API URL there, what it imported."""
    import sys

    from prefect.settings import get_current_settings

    return {
        "parent": os.getppid(),
        "api_url": get_current_settings().api.url,
        "rapidocr_imported": "rapidocr.main" in sys.modules,
        "later": os.environ.get("NARRATE_TEST_SET_LATER"),
    }


@pytest.mark.slow
def test_the_flows_local_cluster_forks_ready_workers_that_report_to_its_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers forked from the forkserver, not spawned; Prefect's settings are the worker's.

    The forkserver imported Prefect with no ``PREFECT_API_URL`` (or an earlier batch's): a
    worker that kept those settings would record its task runs on a throwaway server.
    """
    from multiprocessing import forkserver

    from distributed import Client, LocalCluster

    from flows.batch import _quiet_dask, local_cluster_kwargs
    from flows.dask_preload import start_forkserver

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    start_forkserver()
    monkeypatch.setenv("NARRATE_TEST_SET_LATER", "seen")  # after the forkserver's start
    kwargs = local_cluster_kwargs(2, "http://127.0.0.1:4321/api")
    secrets = [key for key in kwargs["env"] if "KEY" in key or "TOKEN" in key]
    assert not secrets  # only what changed since the forkserver started
    with _quiet_dask(local=True), LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        seen = client.run(_worker_origin)

    server = forkserver._forkserver._forkserver_pid
    assert len(seen) == kwargs["n_workers"]
    for worker, found in seen.items():
        assert found == {
            "parent": server, "api_url": "http://127.0.0.1:4321/api", "rapidocr_imported": True,
            "later": "seen",
        }, worker  # fmt: skip


def test_the_flow_fails_on_a_folder_with_no_image_and_creates_nothing(tmp_path: Path) -> None:
    """A scheduled run pointed at the wrong folder ends Failed saying so, not '0 of 0'."""
    from flows.batch import batch_describe

    (tmp_path / "inbox").mkdir()
    state = batch_describe.fn(str(tmp_path / "inbox"), out_dir=tmp_path / "out")
    assert state.is_failed()
    assert state.message.startswith(f"no image found in {tmp_path / 'inbox'} (folders are")
    assert not (tmp_path / "out").exists()


def test_quiet_dask_applies_in_a_fresh_process_over_dasks_defaults() -> None:
    """`narrate batch --runner dask` in a new process: Dask's config is not loaded yet."""
    code = (
        "import dask\n"
        "from flows.batch import _quiet_dask\n"
        "with _quiet_dask():\n"
        "    print(dask.config.get('distributed.admin.tick.interval'),\n"
        "          dask.config.get('distributed.worker.memory.monitor-interval'),\n"
        "          dask.config.get('distributed.worker.profile.enabled'),\n"
        "          dask.config.get('distributed.scheduler.allowed-failures'))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1s", "1s", "False", "3"]  # ours, and Dask's own default


def test_a_running_cluster_that_does_not_answer_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    import flows.batch
    from adapters.errors import ConfigError

    monkeypatch.setattr(flows.batch, "configured_api_url", lambda: "http://127.0.0.1:4200/api")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        flows.batch.check_cluster(f"tcp://127.0.0.1:{port}")  # something answers: accepted
    with pytest.raises(
        ConfigError,
        match=rf"^no Dask scheduler answers at tcp://127\.0\.0\.1:{port} .*--dask-address$",
    ):
        flows.batch.check_cluster(f"tcp://127.0.0.1:{port}", timeout_s=2)
