"""The Prefect UI path as a person meets it, against a real Prefect server and worker.

On the session's ``prefect server``: the work pool, ``prefect deploy --all`` from
prefect.yaml, one ``prefect worker`` started from another folder (the pull step must bring
the runs back to the project root), and an HTTP server serving the outputs folder. Then
every ``prefect deployment run`` command of the README's "Prefect UI and deployments"
section runs as printed (plus an ``out_dir`` in a temporary folder), beside a run on an
empty image and a batch with one broken image. Everything is read back through the REST
API: states and their messages, logs, artifacts; and the WAV through its link.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assets import SAMPLES_DIR
from tests.flows.test_batch import text_image
from tests.support.prefect_server import PREFECT, free_port, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
DEPLOYMENTS = {
    "image-to-speech/describe-image",
    "voice-qa/voice-qa",
    "batch-describe/nightly-batch",
    "ab-compare/ab-compare",
}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def readme_runs() -> list[list[str]]:
    """The ``prefect deployment run`` commands of the README's Prefect section, as argv."""
    text = README.read_text()
    section = text[text.index("### Prefect UI and deployments") : text.index("### Scaling out")]
    return [
        shlex.split(line)
        for line in section.splitlines()
        if line.startswith(".venv/bin/prefect deployment run ")
    ]


def _prefect(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    run = subprocess.run(
        [PREFECT, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, f"prefect {' '.join(args)}:\n{run.stdout[-3000:]}{run.stderr}"
    return run.stdout


def _start(argv: list[str], env: dict[str, str]) -> str:
    """Run one ``prefect deployment run`` command; the new flow run's id."""
    assert argv[:3] == [".venv/bin/prefect", "deployment", "run"], argv
    out = _prefect(*argv[1:], env=env)
    found = re.search(r"UUID: ([0-9a-f-]{36})", out)
    assert found, out
    return found.group(1)


def _wait(api: str, run_ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    runs: dict[str, dict[str, Any]] = {}
    while True:
        for run_id in run_ids:
            runs[run_id] = httpx.get(f"{api}/flow_runs/{run_id}", timeout=30).json()
        if all(r["state"]["type"] in TERMINAL for r in runs.values()):
            return runs
        states = {r["name"]: r["state"]["type"] for r in runs.values()}
        assert time.monotonic() < deadline, f"runs did not finish: {states}"
        time.sleep(1)


def _logs(
    api: str, run_id: str, *, wait_for: str | None = None, timeout_s: float = 30
) -> list[str]:
    """The run's log lines; with ``wait_for``, poll until a line holds it.

    A flow process ships its logs to the API in the background, so they can land a few
    seconds after the run's final state does.
    """
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
    deadline = time.monotonic() + timeout_s
    while True:
        found = httpx.post(f"{api}/logs/filter", json=body).json()
        lines = [entry["message"] for entry in found]
        if wait_for is None or any(wait_for in line for line in lines):
            return lines
        if time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def _artifacts(api: str, run_id: str) -> dict[str, Any]:
    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    found = httpx.post(f"{api}/artifacts/filter", json=body).json()
    return {a["key"]: a["data"] for a in found}


@pytest.fixture(scope="module")
def runs(
    prefect_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Deploy, start a worker and a file server, run everything; the finished runs."""
    env = prefect_server
    api = env["PREFECT_API_URL"]
    tmp = tmp_path_factory.mktemp("deployments")
    served = tmp / "served"  # the outputs folder behind the web server
    served.mkdir()
    _prefect("work-pool", "create", "narrate-local", "--type", "process", env=env)
    _prefect("--no-prompt", "deploy", "--all", env=env)

    port = free_port()
    files = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elsewhere = tmp / "worker-cwd"  # not the project root: the pull step must move there
    elsewhere.mkdir()
    worker_log = open(tmp / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "narrate-local", "--limit", "3"],
        cwd=elsewhere,
        env={
            **env,
            "NARRATE_LLM_BACKEND": "offline",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "NARRATE_OUTPUT_BASE_URL": f"http://127.0.0.1:{port}/",
            "NARRATE_OUTPUT_PUBLIC_DIR": str(served),
        },
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        started: dict[str, tuple[str, Path]] = {}
        for number, argv in enumerate(readme_runs()):
            out = served / f"readme-{number}"
            started[" ".join(argv[3:])] = (
                _start([*argv, "--param", f"out_dir={out}"], env), out
            )  # fmt: skip
        empty = tmp / "empty.jpg"
        empty.write_bytes(b"")
        out = served / "bad"
        started["bad input"] = (
            _start([".venv/bin/prefect", "deployment", "run", "image-to-speech/describe-image",
                    "--param", f"image_path={empty}", "--param", f"out_dir={out}"], env),
            out,
        )  # fmt: skip
        folder = tmp / "in"
        text_image(folder / "kilo.png", "KILO")
        (folder / "broken.png").write_text("not a picture\n")
        out = served / "batch-bad"
        params = json.dumps({"inputs": str(folder), "out_dir": str(out), "concurrency": 2})
        started["batch with a bad image"] = (
            _start([".venv/bin/prefect", "deployment", "run", "batch-describe/nightly-batch",
                    "--params", params], env),
            out,
        )  # fmt: skip
        finished = _wait(api, [run_id for run_id, _ in started.values()], timeout_s=1200)
        yield {
            "api": api,
            "port": port,
            "served": served,
            "runs": {what: (finished[run_id], out) for what, (run_id, out) in started.items()},
        }
    finally:
        stop(worker)
        stop(files)
        worker_log.close()


def _run(runs: dict[str, Any], starts_with: str) -> tuple[dict[str, Any], Path]:
    matches = [v for k, v in runs["runs"].items() if k.startswith(starts_with)]
    assert len(matches) == 1, (starts_with, list(runs["runs"]))
    return matches[0]


def test_the_readme_names_every_deployment_as_flow_slash_deployment(
    prefect_server: dict[str, str], runs: dict[str, Any]
) -> None:
    api = runs["api"]
    deployed = set()
    for deployment in httpx.post(f"{api}/deployments/filter", json={}).json():
        flow_name = httpx.get(f"{api}/flows/{deployment['flow_id']}").json()["name"]
        deployed.add(f"{flow_name}/{deployment['name']}")
    assert deployed == DEPLOYMENTS
    assert {argv[3] for argv in readme_runs()} == DEPLOYMENTS
    nightly = httpx.get(f"{api}/deployments/name/batch-describe/nightly-batch").json()
    assert nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    pull = nightly["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert Path(pull["directory"]).resolve() == REPO_ROOT


def test_every_readme_run_completes_and_says_what_it_produced(runs: dict[str, Any]) -> None:
    from flows._outcome import opening

    for what, (run, _out) in runs["runs"].items():
        if what in {"bad input", "batch with a bad image"}:
            continue
        assert run["state"]["type"] == "COMPLETED", (what, run["state"])
        assert run["state"]["message"], what

    describe, out = _run(runs, "image-to-speech/describe-image")
    result = json.loads((out / "photo_sunset.json").read_text())
    assert describe["name"] == "describe photo_sunset.jpg"
    assert describe["state"]["message"] == opening(result["description"])

    spoken, out = _run(runs, "voice-qa/voice-qa --param question_audio")
    answer = json.loads((out / "receipt_en.answer.json").read_text())
    assert answer["question_source"] == "audio" and "total" in answer["question"].lower()
    assert "7.20" in answer["answer"]
    assert spoken["state"]["message"] == opening(answer["answer"])
    assert spoken["name"] == "ask about receipt_en.png (spoken: question_total.wav)"

    typed, out = _run(runs, "voice-qa/voice-qa --param question_text")
    answer = json.loads((out / "receipt_en.answer.json").read_text())
    assert answer["question"] == "What is the total?" and "7.20" in answer["answer"]
    assert typed["name"] == "ask about receipt_en.png: What is the total?"

    batch, out = _run(runs, "batch-describe/nightly-batch")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["ok"] >= 4
    assert batch["state"]["name"] == "Completed"
    assert batch["state"]["message"].startswith(f"{summary['ok']} ok, 0 failed")
    assert batch["name"] == "batch assets/samples"

    compare, out = _run(runs, "ab-compare/ab-compare")
    assert compare["name"] == "compare temperature-0.3 vs temperature-0.7 on 2 images"
    assert compare["state"]["message"].startswith("4 ok, 0 failed")
    assert (out / "ab_compare.csv").read_text().count("temperature-0") == 2


def test_bad_input_fails_with_one_line_and_no_traceback(runs: dict[str, Any]) -> None:
    run, out = runs["runs"]["bad input"]
    empty = Path(run["parameters"]["image_path"])
    assert run["state"]["type"] == "FAILED"
    assert run["state"]["message"] == f"{empty}: file is empty (0 bytes)"
    logs = _logs(runs["api"], run["id"], wait_for="file is empty (0 bytes)")
    assert any("file is empty (0 bytes)" in line for line in logs), logs
    assert not [line for line in logs if "Traceback" in line], logs
    assert not out.exists() or not list(out.iterdir())


def test_a_batch_with_a_bad_image_completes_with_failures(runs: dict[str, Any]) -> None:
    run, out = runs["runs"]["batch with a bad image"]
    assert run["state"]["type"] == "COMPLETED"
    assert run["state"]["name"] == "Completed with failures"
    message = run["state"]["message"]
    assert message.startswith("1 ok, 1 failed") and "broken.png" in message, message
    assert "KILO" in json.loads((out / "kilo.json").read_text())["description"]
    logs = _logs(runs["api"], run["id"])
    assert not [line for line in logs if "Traceback" in line], logs


def test_artifacts_link_the_wav_and_show_the_image_path(runs: dict[str, Any]) -> None:
    run, out = _run(runs, "image-to-speech/describe-image")
    artifacts = _artifacts(runs["api"], run["id"])
    markdown = artifacts["description-photo-sunset-jpg"]
    wav = out / "photo_sunset.wav"
    link = f"http://127.0.0.1:{runs['port']}/{out.name}/photo_sunset.wav"
    assert f"[photo_sunset.wav]({link})" in markdown, markdown
    assert httpx.get(link).content == wav.read_bytes()  # one click away, byte for byte
    # the image lies outside the served folder: its absolute path on the worker
    assert f"`{SAMPLES_DIR.resolve() / 'photo_sunset.jpg'}`" in markdown, markdown
    rows = {row["what"]: row["value"] for row in json.loads(artifacts["timings-photo-sunset-jpg"])}
    assert rows["ocr from Prefect's task cache"] in {"yes", "no"}
    assert rows["llm answer from the LLM response cache"] == "no"

    run, out = _run(runs, "voice-qa/voice-qa --param question_text")
    markdown = _artifacts(runs["api"], run["id"])["answer-receipt-en-png"]
    assert f"/{out.name}/receipt_en.answer.wav)" in markdown, markdown


def test_json_and_wav_outputs_share_the_umask_mode(runs: dict[str, Any]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    _, out = _run(runs, "image-to-speech/describe-image")
    modes = {p.suffix: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes == {".json": 0o666 & ~umask, ".wav": 0o666 & ~umask}
