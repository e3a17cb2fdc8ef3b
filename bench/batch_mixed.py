"""Mixed real-world batch: direct engine vs the machine's limit, the flow on threads and Dask.

The inputs are the images people hand in (issue 11), generated with fixed seeds by
``tests/images.py`` and each stamped with its number so that no two are alike (response and
step caches off, fresh output folders: every image is read, described and spoken):
12-megapixel phone photos of a sign (4032x3024 JPEG, light fall-off, tilt, noise) and its
dark-mode twin, a dark-mode settings screenshot, a 100x30000 scrolling screenshot, scans
(a clean page, the uneven-light page, the receipt, the Chinese notice) and text-free photos.
The loopback fake LLM answers after 300 ms; the client's token bucket caps requests at
``--qps`` (default 5, burst 1). A real ``prefect server`` runs for the flow rows.

Rows, each config run ``--rounds`` times in turn (direct, thread, dask, direct, ...):

* naive: the stage functions in a plain loop (once): its CPU seconds give the limit;
* limit = max(naive CPU seconds / cores, N / QPS);
* direct: ``narrate.pipeline.batch.run_direct`` (threads, no Prefect);
* flow, thread runner: ``batch_describe`` on a ``ThreadPoolTaskRunner``;
* flow, dask: ``batch_describe(runner="dask")`` on a LocalCluster of two worker processes
  that the flow starts (its start-up is in the wall time, as a user waits for it);
* cli-direct, cli-dask: ``narrate batch --engine direct`` and ``--engine prefect --runner
  dask`` in a fresh process each round (imports, the forkserver, the LocalCluster: what a
  user waits for); cli-dask's CPU seconds are not counted (when the command exits, its
  forkserver, with the workers' CPU, is reparented and reaped by init); ``--timeline``
  samples them while they run;
* flow, cluster: ``batch_describe(runner="dask", dask_address=...)`` on a running cluster,
  ``dask scheduler`` + ``dask worker --nworkers 2 --preload flows.dask_preload`` started
  once before the rounds (its start-up is printed apart: a long-lived cluster pays it once);
  its CPU seconds include the scheduler's and the workers' (psutil).

CPU seconds are this process and its children (``getrusage`` SELF + CHILDREN: tesseract
subprocesses and the Dask worker processes once they have ended) and, separately, the
Prefect server's. Utilisation = CPU seconds / wall seconds / cores. The machine may be
shared: the load average (``os.getloadavg``) is printed before and after each run.

Note: the token bucket is per process, so the two Dask workers could together send up to
2x ``--qps`` (``NARRATE_LLM_RATE_LIMIT_REDIS_URL`` shares one bucket); on this mix the
local CPU, not the QPS cap, is the bound, so it does not change the figures.

    flock /tmp/bench.lock .venv/bin/python bench/batch_mixed.py [--images 12] [--rounds 2]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch import FONT, batch_bench, batch_parser, naive  # noqa: E402
from tests import images as gen  # noqa: E402
from tests.images import sample_path  # noqa: E402


def _sign(index: int, dark: bool = False) -> Any:
    return gen.render_sign_photo(dark=dark, seed=100 + index)[0]


def _sample(name: str) -> Callable[[int], Any]:
    def render(index: int) -> Any:
        from PIL import Image

        return Image.open(sample_path(name)).convert("RGB")

    return render


# (kind, render(index) -> PIL image, file suffix); the batch cycles through them in order.
KINDS: tuple[tuple[str, Callable[[int], Any], str], ...] = (
    ("phone photo 4032x3024", _sign, ".jpg"),
    ("scan: page", lambda i: gen.render_page(), ".png"),
    ("text-free photo", lambda i: gen.render_textfree_photo(seed=200 + i), ".jpg"),
    ("long screenshot 100x30000", lambda i: gen.render_long_screenshot()[0], ".png"),
    ("dark-mode screenshot", lambda i: gen.render_dark_screenshot()[0], ".png"),
    ("scan: uneven light", _sample("page_uneven_light.jpg"), ".jpg"),
    ("phone photo, dark mode", lambda i: _sign(i, dark=True), ".jpg"),
    ("scan: receipt", _sample("receipt_en.png"), ".png"),
    ("text-free photo", lambda i: gen.render_textfree_photo(seed=300 + i), ".jpg"),
    ("scan: Chinese notice", _sample("notice_zh.png"), ".png"),
    ("phone photo 4032x3024", _sign, ".jpg"),
    ("dark-mode screenshot", lambda i: gen.render_dark_screenshot()[0], ".png"),
)


def make_mixed(folder: Path, count: int) -> list[tuple[str, Path]]:
    """``count`` distinct images of the kinds above, in turn; returns (kind, path) pairs."""
    from PIL import ImageDraw, ImageFont

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        kind, render, suffix = KINDS[i % len(KINDS)]
        image = render(i).convert("RGB")
        font = ImageFont.truetype(FONT, 12 if image.width < 400 else 16)
        ImageDraw.Draw(image).text((4, image.height - 20), f"#{i:03d}", fill=(128,) * 3, font=font)
        path = folder / f"{i:03d}_{kind.split()[0].strip(':,')}{suffix}"
        image.save(path, quality=90) if suffix == ".jpg" else image.save(path)
        made.append((kind, path))
    return made


@dataclass
class Measured:
    """Wall and CPU seconds of one run (CPU: this process + children; the Prefect server)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    busy: list[float] | None = None  # cores busy in each second of the run (--timeline)

    def utilisation(self, cores: int) -> float:
        """Share of the machine's cores this run's own processes kept busy."""
        return self.cpu_s / self.wall_s / cores if self.wall_s else 0.0


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _tree_cpu_s(processes: list[Any]) -> float:
    """CPU seconds of running processes and their children (and their ended children).

    A process reached from two roots (the bench and a cluster it started) counts once.
    """
    import psutil

    seen: set[Any] = set()
    for root in processes:
        try:
            seen.update([root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            continue
    total = 0.0
    for proc in seen:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _forkserver_cpu_s() -> float:
    """CPU seconds of this process's multiprocessing forkserver and the processes it forked.

    The flow's LocalCluster forks its workers from there (``flows.dask_preload.
    start_forkserver``): they are the forkserver's children, not this process's, so
    ``getrusage(CHILDREN)`` here does not see them; the forkserver lives on, so its own CPU
    is not there yet either.
    """
    import psutil

    from flows.dask_preload import forkserver_pid

    pid = forkserver_pid()
    if pid is None:
        return 0.0
    try:
        return _tree_cpu_s([psutil.Process(pid)])
    except psutil.NoSuchProcess:
        return 0.0


@contextmanager
def dask_cluster(
    env: dict[str, str], workers: int, threads: int, cpu_slots: int = 0, preload: bool = True
) -> Iterator[tuple[str, list[Any]]]:
    """A ``dask scheduler`` and ``dask worker --nworkers N --preload flows.dask_preload``.

    ``preload=False``: plain ``dask worker`` processes, as Dask starts them.

    Yields the scheduler's address and the two command processes (psutil) once every worker
    has joined; the start-up's wall and CPU seconds are printed.
    """
    import socket
    import subprocess

    import psutil
    from distributed import Client

    from flows.batch import quiet_dask_keys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    cores = os.cpu_count() or 1
    cluster_env = {
        **os.environ, **env, "PYTHONPATH": str(REPO),
        "NARRATE_CPU_SLOTS": str(cpu_slots or max(1, cores // workers)),
        **{  # as README's Dask set-up says
            "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
            for key, value in quiet_dask_keys().items()
        },
    }  # fmt: skip
    start = time.perf_counter()
    commands = [
        [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        [str(bin_dir / "dask"), "worker", address, "--nworkers", str(workers), "--nthreads",
         str(threads), "--no-dashboard", *(["--preload", "flows.dask_preload"] * preload)],
    ]  # fmt: skip
    popens = [
        subprocess.Popen(c, env=cluster_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    processes = [psutil.Process(p.pid) for p in popens]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        print(f"cluster start   {time.perf_counter() - start:6.1f} s wall, "
              f"{_tree_cpu_s(processes):6.1f} CPU s ({workers} workers x {threads} threads"
              f"{', preloaded' if preload else ''})")  # fmt: skip
        yield address, processes
    finally:
        for popen in reversed(popens):
            popen.terminate()
            popen.wait(30)


def _sample_busy(cluster: list[Any], stop: threading.Event, into: list[float]) -> None:
    """Cores busy in each second: this process tree (Prefect server included) and ``cluster``."""
    import psutil

    def cpu_s() -> float:  # the bench started the cluster's processes: each counts once
        return _tree_cpu_s([psutil.Process(), *cluster])

    last, then = cpu_s(), time.perf_counter()
    while not stop.wait(1.0):
        cpu, now = cpu_s(), time.perf_counter()
        into.append((cpu - last) / (now - then))
        last, then = cpu, now


@contextmanager
def measured(
    server_pid: int | None = None,
    cluster: list[Any] = (),  # type: ignore[assignment]
    timeline: bool = False,
) -> Iterator[Measured]:
    """Time the block: wall, own CPU (with ended children and ``cluster``), the server's CPU.

    With ``timeline``, also the cores busy in each second (``Measured.busy``): where a run
    leaves a core idle (a tail where one worker still has images and the other has none).
    """
    import psutil

    server = psutil.Process(server_pid) if server_pid else None

    def server_cpu() -> float:
        if server is None:
            return 0.0
        times = server.cpu_times()
        return times.user + times.system

    result = Measured(load_before=os.getloadavg()[0])
    stop = threading.Event()
    if timeline:
        result.busy = []
        sampler = threading.Thread(target=_sample_busy, args=(cluster, stop, result.busy))
        sampler.start()
    cpu0 = _own_cpu_s() + _tree_cpu_s(cluster) + _forkserver_cpu_s()
    server0, start = server_cpu(), time.perf_counter()
    try:
        yield result
    finally:
        stop.set()
        if timeline:
            sampler.join()
    result.wall_s = time.perf_counter() - start
    result.cpu_s = _own_cpu_s() + _tree_cpu_s(cluster) + _forkserver_cpu_s() - cpu0
    result.server_cpu_s = server_cpu() - server0
    result.load_after = os.getloadavg()[0]


def main() -> None:
    parser = batch_parser(__doc__, images=12, qps=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default="direct,thread,dask,cluster")
    parser.add_argument("--no-naive", action="store_true", help="limit from --cpu-s instead")
    parser.add_argument("--cpu-s", type=float, default=0.0)
    parser.add_argument(
        "--timeline", action="store_true", help="print the cores busy in each second of a run"
    )
    parser.add_argument(
        "--cluster-cpu-slots", type=int, default=0,
        help="NARRATE_CPU_SLOTS of each cluster worker (default cores / workers)",
    )  # fmt: skip
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    with (
        batch_bench("narrate-bench-mixed-", args.latency, args.qps) as (work, _, env),
        ExitStack() as stack,
    ):
        server_pid = int(env["BENCH_PREFECT_SERVER_PID"])
        made = make_mixed(work / "in", args.images)
        print(f"{args.images} images, LLM {args.latency * 1000:.0f} ms/call, QPS cap "
              f"{args.qps:g}, {cores} cores, concurrency {args.concurrency}")  # fmt: skip
        for kind in dict.fromkeys(k for k, _ in made):
            print(f"  {sum(k == kind for k, _ in made)} x {kind}")

        from flows.batch import batch_describe
        from narrate.config.settings import load_settings
        from narrate.pipeline.batch import run_direct

        if args.no_naive:
            naive_cpu = args.cpu_s
        else:
            (work / "naive").mkdir()
            with measured() as m:
                base = naive([p for _, p in made], work / "naive")
            naive_cpu = m.cpu_s
            print(f"naive loop      {m.wall_s:6.1f} s wall, {m.cpu_s:6.1f} CPU s "
                  f"(local stages {base['local']:.1f} s, LLM {base['llm']:.1f} s), "
                  f"load {m.load_before:.1f}->{m.load_after:.1f}")  # fmt: skip
        limit = max(naive_cpu / cores, args.images / args.qps)
        print(f"limit           {limit:6.1f} s = max({naive_cpu:.1f} CPU s / {cores} cores, "
              f"{args.images} / {args.qps:g} QPS)")  # fmt: skip

        batch_describe(str(made[1][1]), out_dir=work / "warm")  # first flow run in process

        configs = args.configs.split(",")
        address, cluster = "", []
        if "cluster" in configs:
            workers = 2
            threads = -(-args.concurrency // workers)
            address, cluster = stack.enter_context(
                dask_cluster(env, workers, threads, args.cluster_cpu_slots)
            )

        def run(config: str, out: Path) -> int:
            if config.startswith("cli-"):  # a fresh `narrate batch` process, as a user runs it
                how = config.removeprefix("cli-")
                engine = ["direct"] if how == "direct" else ["prefect", "--runner", how]
                done = subprocess.run(
                    [sys.executable, "-m", "narrate.cli.main", "batch", str(work / "in"),
                     "--out", str(out), "--json", "--concurrency", str(args.concurrency),
                     "--engine", *engine],
                    env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                    text=True, check=True,
                )  # fmt: skip
                return int(json.loads(done.stdout)["ok"])
            if config == "cluster":
                flow = batch_describe(str(work / "in"), out_dir=out, concurrency=args.concurrency,
                                      runner="dask", dask_address=address)  # fmt: skip
                return int(flow["ok"])
            if config == "direct":
                summary = run_direct(work / "in", out, settings=load_settings(),
                                     concurrency=args.concurrency)  # fmt: skip
                return summary.ok
            flow = batch_describe(str(work / "in"), out_dir=out, concurrency=args.concurrency,
                                  runner=config)  # type: ignore[arg-type]  # fmt: skip
            return int(flow["ok"])

        walls: dict[str, list[float]] = {c: [] for c in configs}
        for round_ in range(args.rounds):
            for config in configs:
                cluster_now = cluster if config == "cluster" else []
                with measured(server_pid, cluster_now, args.timeline) as m:
                    ok = run(config, work / f"{config}-{round_}")
                walls[config].append(m.wall_s)
                extra = f", server {m.server_cpu_s:.1f} CPU s" if config != "direct" else ""
                cpu = f"CPU {m.cpu_s:.1f} s = {m.utilisation(cores):.2f} of {cores} cores"
                if config == "cli-dask":  # its forkserver is reaped by init, not counted here
                    cpu = "CPU not counted (see --timeline)"
                print(
                    f"{config:7s} round {round_ + 1}: {m.wall_s:6.1f} s ({ok} ok), "
                    f"{args.images / m.wall_s:.2f} img/s, {limit / m.wall_s:.2f} of the limit, "
                    f"{cpu}{extra}, load {m.load_before:.1f}->{m.load_after:.1f}",
                    flush=True,
                )
                if m.busy is not None:
                    print("  cores busy per second: " + " ".join(f"{b:.1f}" for b in m.busy))
        print("\nmedian wall (s) and ratios:")
        best = {c: statistics.median(w) for c, w in walls.items()}
        for config, wall in best.items():
            line = f"  {config:7s} {wall:6.1f} s  {limit / wall:.2f} of the limit"
            base = "cli-direct" if config.startswith("cli-") else "direct"
            if config != base and base in best:
                line += f", {best[base] / wall:.2f} of {base}"
            print(line)


if __name__ == "__main__":
    main()
