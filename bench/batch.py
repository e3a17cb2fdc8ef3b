"""Batch throughput: the batch flow against a naive loop and the machine's physical limit.

Everything runs in one invocation on the same images (N distinct variants of the bundled
samples, so no cache hits), with the loopback fake LLM answering after 300 ms and the
client's token bucket capping the request rate (``NARRATE_LLM_QPS``):

* naive: the plain stage functions in a ``for`` loop, one image after the other;
* direct: ``narrate.pipeline.batch.run_direct`` (thread pool, no Prefect);
* flow: the ``batch-describe`` flow (Prefect tasks on threads) at the same concurrency;
* flow, concurrency 1 vs naive: orchestration overhead per image;
* limit: max(local stage seconds / cores, N / QPS) from the naive run's measurements;
* peak RSS of the flow process at two batch sizes (each in a fresh process).

A Prefect server is started for the run (own PREFECT_HOME), as a worker would use one.

    .venv/bin/python bench/batch.py [--images 16] [--qps 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assets import SAMPLES_DIR  # noqa: E402
from tests.support.fake_llm import FakeLLMServer  # noqa: E402

SAMPLES = ("receipt_en.png", "notice_zh.png", "photo_sunset.jpg", "page_uneven_light.jpg")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def make_images(folder: Path, count: int) -> list[Path]:
    """``count`` distinct images: the samples in turn, each stamped with its number."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        sample = SAMPLES[i % len(SAMPLES)]
        image = Image.open(SAMPLES_DIR / sample).convert("RGB")
        font = ImageFont.truetype(FONT, 16)
        ImageDraw.Draw(image).text((8, image.height - 26), f"#{i:03d}", fill=(90,) * 3, font=font)
        path = folder / f"{i:03d}_{Path(sample).stem}.png"
        image.save(path)
        paths.append(path)
    return paths


def naive(images: list[Path], out: Path) -> dict[str, float]:
    """The stage functions in a plain loop; returns wall time and time per stage kind."""
    from narrate.config.settings import load_settings
    from narrate.pipeline import steps as stages

    settings = load_settings()
    local = llm = 0.0
    start = time.perf_counter()
    for image in images:
        t0 = time.perf_counter()
        ocr = stages.run_ocr(image, "auto", settings.ocr)
        features = stages.run_features(image, ocr.boxes)
        t1 = time.perf_counter()
        description = stages.run_llm(ocr, features, settings.llm, image_path=image)
        t2 = time.perf_counter()
        stages.run_tts(description.text, out / f"{image.stem}.wav", description.language,
                          settings.tts)  # fmt: skip
        t3 = time.perf_counter()
        local += (t1 - t0) + (t3 - t2)
        llm += t2 - t1
    return {"wall": time.perf_counter() - start, "local": local, "llm": llm}


def child_peak_rss(folder: Path, out: Path, env: dict[str, str], concurrency: int) -> dict:
    """Run the flow over ``folder`` in a fresh process; its peak RSS and wall time."""
    code = (
        "import json, resource, time, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from flows.batch import batch_describe\n"
        "t = time.perf_counter()\n"
        f"s = batch_describe({str(folder)!r}, out_dir={str(out)!r}, concurrency={concurrency})\n"
        "print(json.dumps({'ok': s['ok'], 'wall': time.perf_counter() - t,\n"
        "  'rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=REPO, timeout=900)  # fmt: skip
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def start_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Prefect server on a free loopback port, healthy; returns it and its API URL."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
         "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("prefect server did not start")


@contextmanager
def batch_bench(
    prefix: str, latency: float, qps: float
) -> Iterator[tuple[Path, FakeLLMServer, dict[str, str]]]:
    """A work folder, the loopback fake LLM and a Prefect server, in this process's env.

    Yields the folder, the fake server and the environment set (Prefect on the server,
    LLM calls to the fake at ``qps`` with burst 1, caches off, ``OMP_THREAD_LIMIT=1``).
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    fake = FakeLLMServer(latency_s=latency).start()
    server, api_url = start_prefect_server(work / "prefect")
    env = {
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "OMP_THREAD_LIMIT": "1",
        "NARRATE_LLM_BACKEND": "openai",
        "NARRATE_LLM_BASE_URL": fake.base_url,
        "NARRATE_LLM_QPS": str(qps),
        "NARRATE_LLM_BURST": "1",
        "NARRATE_CACHE_BACKEND": "off",  # every image is read and reaches the LLM
        "BENCH_PREFECT_SERVER_PID": str(server.pid),
    }
    os.environ.update(env)
    try:
        yield work, fake, env
    finally:
        fake.stop()
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def batch_parser(doc: str, *, images: int, qps: float) -> argparse.ArgumentParser:
    """The options every batch benchmark takes: batch size, the LLM's pace, concurrency."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--qps", type=float, default=qps, help="the client's request cap")
    parser.add_argument("--latency", type=float, default=0.3, help="fake LLM seconds/answer")
    parser.add_argument("--concurrency", type=int, default=8)
    return parser


def main() -> None:
    parser = batch_parser(__doc__, images=16, qps=4.0)
    parser.add_argument("--memory-sizes", default="12,48")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    with batch_bench("narrate-bench-batch-", args.latency, args.qps) as (work, fake, env):
        images = make_images(work / "in", args.images)
        print(f"{args.images} images, LLM {args.latency * 1000:.0f} ms/call, "
              f"QPS cap {args.qps:g}, {cores} cores, concurrency {args.concurrency}")  # fmt: skip

        (work / "naive").mkdir()
        base = naive(images, work / "naive")
        limit = max(base["local"] / cores, args.images / args.qps)
        print(f"naive loop      {base['wall']:6.2f} s  (local stages {base['local']:.2f} s, "
              f"LLM {base['llm']:.2f} s)")  # fmt: skip
        print(f"physical limit  {limit:6.2f} s  = max(local {base['local']:.2f} s / {cores} "
              f"cores, {args.images} / {args.qps:g} QPS)")  # fmt: skip

        from flows.batch import batch_describe
        from narrate.config.settings import load_settings
        from narrate.pipeline.batch import run_direct

        t = time.perf_counter()
        direct = run_direct(work / "in", work / "direct", settings=load_settings(),
                            concurrency=args.concurrency)  # fmt: skip
        direct_wall = time.perf_counter() - t
        print(f"direct engine   {direct_wall:6.2f} s  ({direct.ok} ok)")

        batch_describe(str(images[0]), out_dir=work / "warm")  # first flow run in process
        t = time.perf_counter()
        flow = batch_describe(str(work / "in"), out_dir=work / "flow",
                              concurrency=args.concurrency)  # fmt: skip
        flow_wall = time.perf_counter() - t
        print(f"batch flow      {flow_wall:6.2f} s  ({flow['ok']} ok)  "
              f"{args.images / flow_wall:.2f} images/s; naive {args.images / base['wall']:.2f}, "
              f"limit {args.images / limit:.2f}")  # fmt: skip

        t = time.perf_counter()
        batch_describe(str(work / "in"), out_dir=work / "flow1", concurrency=1)
        flow1 = time.perf_counter() - t
        print(
            f"flow, 1 at once {flow1:6.2f} s  -> orchestration overhead "
            f"{(flow1 - base['wall']) / args.images * 1000:.0f} ms/image vs the naive loop"
        )

        t = time.perf_counter()
        again = batch_describe(str(work / "in"), out_dir=work / "flow")
        print(f"rerun (skips)   {time.perf_counter() - t:6.2f} s  ({again['skipped']} skipped, "
              f"{len(fake.requests)} LLM calls in total)")  # fmt: skip

        for size in (int(s) for s in args.memory_sizes.split(",")):
            folder = work / f"mem{size}"
            make_images(folder, size)
            peak = child_peak_rss(folder, work / f"mem{size}-out", {**os.environ, **env},
                                  args.concurrency)  # fmt: skip
            print(f"peak RSS, {size:3d} images: {peak['rss_mib']:6.0f} MiB "
                  f"(flow process; {peak['ok']} ok in {peak['wall']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
