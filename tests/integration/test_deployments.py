"""prefect.yaml against a real Prefect server: pool, deploy --all, a worker runs the batch.

Starts ``prefect server start`` on a free loopback port with its own PREFECT_HOME, deploys
every deployment from the project root, triggers ``nightly-batch`` on a temporary folder
and lets ``prefect worker start --run-once`` execute it from another directory (the pull
step must bring it back to the project root). Checks the run's state through the REST API
and the files the flow wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assets import SAMPLES_DIR
from tests.flows.test_batch import text_image

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on loopback; yields the environment that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NARRATE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    log = open(home / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (home / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prefect server did not become healthy"
            time.sleep(0.5)
        yield env
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _prefect(*args: str, env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 300):
    run = subprocess.run(
        [PREFECT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, f"prefect {' '.join(args)}:\n{run.stdout[-3000:]}{run.stderr}"
    return run


def test_deploy_all_and_run_the_nightly_batch_through_a_worker(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    env = prefect_server
    api = env["PREFECT_API_URL"]
    _prefect("work-pool", "create", "narrate-local", "--type", "process", env=env)
    _prefect("--no-prompt", "deploy", "--all", env=env)

    names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
    assert names == {"describe-image", "voice-qa", "nightly-batch", "ab-compare"}
    nightly = httpx.get(f"{api}/deployments/name/batch-describe/nightly-batch").json()
    assert nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    assert nightly["work_pool_name"] == "narrate-local"
    pull = nightly["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert Path(pull["directory"]).resolve() == REPO_ROOT

    folder = tmp_path / "in"
    text_image(folder / "kilo.png", "KILO")
    shutil.copy(SAMPLES_DIR / "receipt_en.png", folder / "receipt.png")
    out = tmp_path / "out"
    params = json.dumps({"inputs": str(folder), "out_dir": str(out), "concurrency": 2})
    started = _prefect(
        "deployment", "run", "batch-describe/nightly-batch", "--params", params, env=env
    )
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)  # type: ignore[union-attr]

    elsewhere = tmp_path / "worker-cwd"  # not the project root: the pull step must move
    elsewhere.mkdir()
    _prefect(
        "worker", "start", "--pool", "narrate-local", "--run-once",
        env={**env, "NARRATE_LLM_BACKEND": "offline"}, cwd=elsewhere,
    )  # fmt: skip

    flow_run = httpx.get(f"{api}/flow_runs/{flow_run_id}").json()
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["ok"], summary["failed"]) == (2, 0)
    assert "KILO" in json.loads((out / "kilo.json").read_text())["description"]
    assert (out / "receipt.wav").stat().st_size > 10_000
    artifacts = httpx.post(
        f"{api}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
    ).json()
    assert {"batch-summary", "batch-progress"} <= {a["key"] for a in artifacts}
