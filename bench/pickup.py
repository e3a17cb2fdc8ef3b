"""Pick-up time: from ``prefect deployment run`` to Completed for ``describe-image``.

What a person in the Prefect UI waits for when a run takes under a second of work: the
worker's next poll, the flow process's start (interpreter, imports, the pull step), the
flow, and the final state. Starts a real ``prefect server`` on a free loopback port with its
own PREFECT_HOME, then for each setup below deploys ``describe-image`` from that setup's
project folder, starts ``prefect worker start`` with that setup's poll interval, runs one
warm-up run and then ``--runs`` runs one after another (offline describer, receipt sample),
each created through the REST API as ``prefect deployment run`` does:

- ``before``: the code at ``--baseline-ref`` (default: the commit before this issue's
  work), exported with ``git archive``, and Prefect's default poll (10 s): the baseline;
- ``poll only``: this tree with the default poll, so the poll's share can be told apart
  from the start-up trimming;
- ``after``: this tree with ``--poll`` seconds (what ``make worker`` uses).

Per run it reads the server's state history: created -> Pending (the worker picked it up),
Pending -> Running (the flow process started), Running -> Completed (the flow itself).

    flock /tmp/bench.lock .venv/bin/python bench/pickup.py [--runs 10] [--poll 1]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support, when run as a script

from tests.support.prefect_server import PREFECT, prefect_server, stop  # noqa: E402

DEFAULT_POLL_S = 10.0  # Prefect's PREFECT_WORKER_QUERY_SECONDS default
BASELINE_REF = "b65538e"  # main before issue 14


def export_tree(ref: str, dest: Path) -> Path:
    """The project at git ``ref``, unpacked into ``dest`` (no .git, no venv)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def one_run(api: str, deployment_id: str, out_dir: Path) -> dict[str, float]:
    """Create a run as ``prefect deployment run`` does; wait for its end; the timings (s)."""
    started = time.time()
    for attempt in range(5):  # a busy SQLite server answers 503 "database is locked"
        response = httpx.post(
            f"{api}/deployments/{deployment_id}/create_flow_run",
            json={"parameters": {"out_dir": str(out_dir)}},
            timeout=30,
        )
        if response.status_code < 300:
            break
        print(f"create_flow_run: HTTP {response.status_code} {response.text[:200]}", flush=True)
        time.sleep(1 + attempt)
    run = response.json()
    while True:
        reply = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=30)
        if reply.status_code >= 300:
            time.sleep(0.5)
            continue
        state = reply.json()["state"]
        if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            break
        time.sleep(0.05)
    total = time.time() - started
    if state["type"] != "COMPLETED":
        sys.exit(f"run ended {state['type']}: {state['message']}")
    history = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}).json()
    first = {}
    for item in sorted(history, key=lambda s: s["timestamp"]):
        first.setdefault(item["type"], _stamp(item["timestamp"]))
    created = _stamp(run["created"])
    return {
        "total": total,
        "pick-up": first["PENDING"] - created,
        "process start": first["RUNNING"] - first["PENDING"],
        "flow": first["COMPLETED"] - first["RUNNING"],
    }


def measure(
    env: dict[str, str], project: Path, poll_s: float, runs: int, scratch: Path
) -> list[dict[str, float]]:
    """Deploy ``describe-image`` from ``project``, start a worker, time ``runs`` runs."""
    subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--name", "describe-image"],
        cwd=project, env=env, check=True, capture_output=True,
    )  # fmt: skip
    api = env["PREFECT_API_URL"]
    deployment = httpx.get(f"{api}/deployments/name/image-to-speech/describe-image").json()
    worker_log = open(scratch / f"worker-{time.time_ns()}.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "narrate-local"],
        cwd=scratch,
        env={**env, "NARRATE_LLM_BACKEND": "offline", "PREFECT_WORKER_QUERY_SECONDS": str(poll_s)},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(poll_s + 3)  # the worker has started and polled once
        one_run(api, deployment["id"], scratch / "out")  # warm-up: caches, page cache
        return [one_run(api, deployment["id"], scratch / "out") for _ in range(runs)]
    finally:
        stop(worker)
        worker_log.close()


def main() -> None:
    """Measure the three setups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--poll", type=float, default=1.0, help="the short poll interval (s)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="narrate-pickup-") as tmp:
        scratch = Path(tmp)
        (scratch / "home").mkdir()
        baseline = export_tree(args.baseline_ref, scratch / "baseline")
        load = os.getloadavg()[0]
        with prefect_server(scratch / "home") as env:
            subprocess.run(
                [PREFECT, "work-pool", "create", "narrate-local", "--type", "process"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            setups = [
                (f"before ({args.baseline_ref}, poll {DEFAULT_POLL_S:g} s)", baseline,
                 DEFAULT_POLL_S),
                (f"poll only (this tree, poll {DEFAULT_POLL_S:g} s)", ROOT, DEFAULT_POLL_S),
                (f"after (this tree, poll {args.poll:g} s)", ROOT, args.poll),
            ]  # fmt: skip
            results = {}
            for name, project, poll in setups:
                results[name] = measure(env, project, poll, args.runs, scratch)
                totals = sorted(r["total"] for r in results[name])
                print(f"{name}: {', '.join(f'{t:.2f}' for t in totals)} s", flush=True)
        load = max(load, os.getloadavg()[0])

    base = statistics.median(r["total"] for r in next(iter(results.values())))
    print(f"describe-image, {args.runs} runs per setup, load average up to {load:.1f}")
    print(
        f"{'setup':42} {'median':>7} {'max':>7} {'ratio':>6} | median pick-up, "
        "process start, flow (s)"
    )
    for name, rows in results.items():
        totals = [r["total"] for r in rows]
        median = statistics.median(totals)
        parts = ", ".join(
            f"{statistics.median(r[p] for r in rows):.2f}"
            for p in ("pick-up", "process start", "flow")
        )
        print(f"{name:42} {median:6.2f}s {max(totals):6.2f}s {median / base:5.2f}x | {parts}")


if __name__ == "__main__":
    main()
