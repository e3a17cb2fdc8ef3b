"""``narrate serve`` as a person runs it (a subprocess), and the Prefect engine (a flow run per
request, on the session's Prefect test server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.narrate.service.conftest import REPO_ROOT, SAMPLES, SECRET, bearer, make_token


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATE_API_", "PREFECT_API"))}
    env.update(PYTHONPATH=str(REPO_ROOT), NARRATE_LLM_BACKEND="offline", **extra)
    return env


def test_without_tokens_it_refuses_to_listen_beyond_loopback():
    for host in ("0.0.0.0", "::"):
        run = subprocess.run(
            [sys.executable, "-m", "narrate.cli", "serve", "--host", host, "--port", "0"],
            capture_output=True, text=True, env=_env(), timeout=60, cwd=REPO_ROOT,
        )  # fmt: skip
        assert run.returncode == 2, run.stderr
        line = run.stderr.strip()
        assert line.startswith(f"narrate serve: refusing to listen on {host}: without access")
        assert "NARRATE_API_JWT_SECRET" in line and "127.0.0.1" in line
        assert "Traceback" not in run.stderr


def test_bad_settings_are_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
        env=_env(NARRATE_API_ALLOW_IPS="10.0.0.0/8, intranet", NARRATE_API_JWT_SECRET=SECRET),
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "narrate serve: NARRATE_API_ALLOW_IPS: 'intranet' is not an IP address or CIDR block"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_narrate_serve_serves_and_stops_cleanly(tmp_path):
    port = _free_port()
    work_dir = tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
        env=_env(NARRATE_API_JWT_SECRET=SECRET, NARRATE_API_WORK_DIR=str(work_dir)),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "narrate serve did not come up"
            time.sleep(0.2)
        with (SAMPLES / "receipt_en.png").open("rb") as fh:
            response = httpx.post(
                f"{url}/v1/describe", files={"image": ("r.png", fh)},
                headers=bearer(make_token()), timeout=120,
            )  # fmt: skip
        assert response.status_code == 200, response.text
        assert "TOTAL 7.20" in response.json()["description"]
        assert (work_dir / response.json()["id"] / "result.wav").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"narrate serve: http://127.0.0.1:{port}/ (engine direct, tokens JWT" in output
    assert SECRET not in output
    assert list(work_dir.iterdir()) == []  # results go with the server


def test_help_lists_the_settings():
    run = subprocess.run(
        [sys.executable, "-m", "narrate.cli", "serve", "--help"],
        capture_output=True, text=True, env=_env(), timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert run.returncode == 0
    for name in ("NARRATE_API_JWT_SECRET", "NARRATE_API_ALLOW_IPS", "NARRATE_API_MAX_QUEUE"):
        assert name in run.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_prefect_engine_makes_a_flow_run_per_request(serve_api, prefect_harness):
    from prefect.client.orchestration import get_client

    served = serve_api(engine="prefect")
    png = (SAMPLES / "receipt_en.png").read_bytes()

    def describe(_: int) -> httpx.Response:
        return httpx.post(f"{served.url}/v1/describe", files={"image": ("r.png", png)}, timeout=300)

    with ThreadPoolExecutor(2) as pool:  # two flow runs at once in the server's workers
        responses = list(pool.map(describe, range(2)))
    ids = []
    for response in responses:
        assert response.status_code == 200, response.text
        assert "TOTAL 7.20" in response.json()["description"]
        ids.append(response.json()["id"])

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    images = [
        str(run.parameters.get("image_path"))
        for run in runs
        if run.state is not None and run.state.is_completed()
    ]
    for job_id in ids:  # each flow run's image lies in its job's folder
        assert sum(job_id in image for image in images) == 1, images
