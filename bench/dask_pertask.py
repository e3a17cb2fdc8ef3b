"""Prefect's own cost per task run on a running Dask cluster: plain workers vs narrate's preload.

Empty task runs (a task that returns its argument) through a flow on ``DaskTaskRunner``,
so that only the orchestration runs: the CPU seconds per task run of the cluster's
processes (scheduler, nanny, workers; psutil) and of this, the flow's, process. Two
clusters of ``dask worker --nworkers 2``, one plain and one started with
``--preload flows.dask_preload`` (Prefect's settings built once per worker, one TLS context
for its API clients), each given the same flows in turn, ``--rounds`` times, against a real
``prefect server`` on loopback. The Prefect server's CPU is printed apart.

    flock /tmp/bench.lock bench/priority.sh .venv/bin/python bench/dask_pertask.py [--tasks 96]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch import batch_bench  # noqa: E402
from bench.batch_mixed import _tree_cpu_s, dask_cluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import psutil

    with batch_bench("narrate-bench-pertask-", 0.0, 5.0) as (_, _, env), ExitStack() as stack:
        # Prefect reads its settings (the server's URL) when imported: after batch_bench
        from prefect import flow, task
        from prefect_dask import DaskTaskRunner

        @task
        def nothing(i: int) -> int:
            return i

        def run(address: str) -> None:
            @flow(task_runner=DaskTaskRunner(address=address))
            def many(n: int) -> int:
                return sum(f.result() for f in nothing.map(list(range(n))))

            assert many(args.tasks) == sum(range(args.tasks))

        server = psutil.Process(int(env["BENCH_PREFECT_SERVER_PID"]))
        clusters = {
            name: stack.enter_context(dask_cluster(env, 2, 4, preload=preload))
            for name, preload in (("plain", False), ("preload", True))
        }
        for address, _ in clusters.values():
            run(address)  # the workers' first task runs import what they need
        print(f"{args.tasks} empty task runs per flow, load {os.getloadavg()[0]:.1f}")
        per_task: dict[str, list[float]] = {name: [] for name in clusters}
        for round_ in range(args.rounds):
            for name, (address, processes) in clusters.items():
                cluster0, own0 = _tree_cpu_s(processes), time.process_time()
                server0 = sum(server.cpu_times()[:2])
                start = time.perf_counter()
                run(address)
                wall = time.perf_counter() - start
                cluster_ms = (_tree_cpu_s(processes) - cluster0) / args.tasks * 1000
                own_ms = (time.process_time() - own0) / args.tasks * 1000
                server_ms = (sum(server.cpu_times()[:2]) - server0) / args.tasks * 1000
                per_task[name].append(cluster_ms)
                print(f"{name:8s} round {round_ + 1}: {wall:5.1f} s wall; CPU ms per task run: "
                      f"cluster {cluster_ms:5.1f}, flow process {own_ms:5.1f}, Prefect server "
                      f"{server_ms:5.1f}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
        medians: dict[str, Any] = {n: statistics.median(v) for n, v in per_task.items()}
        print(
            f"median cluster CPU ms per task run: plain {medians['plain']:.1f}, "
            f"preload {medians['preload']:.1f} ({medians['preload'] / medians['plain']:.2f}x)"
        )


if __name__ == "__main__":
    main()
