"""``narrate serve`` under load: 20 concurrent clients posting the sample images.

One invocation measures, against the loopback fake LLM answering after 300 ms:

* baseline: the same pipeline called directly in a process (``describe_one`` with the
  server's steps, OCR and features one per core, on 8 threads like the server's workers;
  no HTTP, no upload checks) over the same images: the machine's limit for this work;
* load: ``narrate serve`` (a subprocess, direct engine, tokens on) with the default queue,
  ``--clients`` clients each posting ``/v1/describe`` in a loop for ``--seconds``;
* low queue: the same load with ``NARRATE_API_CONCURRENCY=2`` and ``NARRATE_API_MAX_QUEUE=2``;
  clients that get 503 wait the ``Retry-After`` and try again. Every accepted request must
  complete: the clients' 200s, the server's audit records and the LLM calls must agree.

Reported: requests per second (200s), p50/p99 latency of the 200s, errors (neither 200 nor
503), 503s, and the ratio of the service's rate to the baseline's. The response cache and
the step cache are off, so every request does the full work (OCR, features, LLM, TTS).

    .venv/bin/python bench/service.py [--seconds 60] [--clients 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assets import SAMPLES_DIR  # noqa: E402
from tests.support.fake_llm import FakeLLMServer  # noqa: E402

SAMPLES = ("receipt_en.png", "notice_zh.png", "photo_sunset.jpg", "page_uneven_light.jpg")
SECRET = "bench-secret-0123456789abcdef-0123456789abcdef"
API_KEY = "sk-bench-0123456789abcdef"


def base_env(llm_url: str, work: Path) -> dict[str, str]:
    """The environment of both the server and the baseline: the fake LLM, caches off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATE_", "PREFECT_API"))}
    env.update(
        PYTHONPATH=str(REPO),
        OMP_THREAD_LIMIT="1",
        NARRATE_LLM_BACKEND="openai",
        NARRATE_LLM_BASE_URL=llm_url,
        NARRATE_LLM_API_KEY=API_KEY,
        NARRATE_CACHE_BACKEND="off",
        NARRATE_AUDIT_DIR=str(work / "audit"),
        NARRATE_API_JWT_SECRET=SECRET,
        NARRATE_API_WORK_DIR=str(work / "serve"),
    )
    return env


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0-1) of ``values``, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def baseline(env: dict[str, str], out: Path, concurrency: int, seconds: float) -> dict:
    """The pipeline without HTTP: ``describe_one`` on a thread pool for ``seconds``."""
    code = f"""
import json, os, sys, time, itertools, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from narrate.config.settings import load_settings
from narrate.pipeline.sequence import describe_one
from narrate.service.engine import PipelineRunner
settings = load_settings()
steps = PipelineRunner(settings, "direct").steps  # the server's steps: OCR/features per core
images = [Path({str(SAMPLES_DIR)!r}) / n for n in {list(SAMPLES)!r}]
counter = itertools.count()
latencies, stop = [], time.perf_counter() + {seconds}
def worker(k):
    while time.perf_counter() < stop:
        i = next(counter)
        t = time.perf_counter()
        describe_one(images[i % 4], out_dir=Path({str(out)!r}), lang="auto", settings=settings,
                     steps=steps, stem=f"b{{i}}")
        latencies.append(time.perf_counter() - t)
start = time.perf_counter()
with ThreadPoolExecutor({concurrency}) as pool:
    list(pool.map(worker, range({concurrency})))
print(json.dumps({{"done": len(latencies), "seconds": time.perf_counter() - start,
                   "latencies": latencies}}))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    data = json.loads(run.stdout.strip().splitlines()[-1])
    lat = data["latencies"]
    return {
        "rps": data["done"] / data["seconds"],
        "done": data["done"],
        "p50": percentile(lat, 0.5),
        "p99": percentile(lat, 0.99),
    }


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``narrate serve`` on ``port``; returns once /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "narrate.cli", "serve", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"narrate serve did not start; see {log}")


def load(port: int, clients: int, seconds: float, *, honour_retry_after: bool) -> dict:
    """``clients`` threads posting the samples for ``seconds``; counts and latencies."""
    images = [(n, (SAMPLES_DIR / n).read_bytes()) for n in SAMPLES]
    token = jwt.encode(
        {"sub": "bench", "exp": int(time.time()) + 3600, "scope": "describe"},
        SECRET,
        algorithm="HS256",
    )
    lock = threading.Lock()
    ok: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ) as http:
            i = k
            while time.perf_counter() < stop:
                name, data = images[i % len(images)]
                i += 1
                started = time.perf_counter()
                try:
                    response = http.post("/v1/describe", files={"image": (name, data)})
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - started
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 200:
                        ok.append(took)
                    elif response.status_code != 503:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                if response.status_code == 503 and honour_retry_after:
                    time.sleep(float(response.headers.get("retry-after", "1")))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started  # includes the requests still running at the end
    return {
        "wall_s": wall,
        "ok": len(ok),
        "rps": len(ok) / wall,
        "p50": percentile(ok, 0.5),
        "p99": percentile(ok, 0.99),
        "busy_503": statuses.get(503, 0),
        "errors": len(errors),
        "error_samples": errors[:3],
        "statuses": statuses,
    }


def audited(audit_dir: Path, since: float) -> dict[int, int]:
    """Statuses of the ``POST /v1/describe`` audit records written after ``since``."""
    counts: dict[int, int] = {}
    for path in audit_dir.glob("audit-*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("endpoint") != "POST /v1/describe":
                continue
            ts = time.mktime(time.strptime(record["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if ts >= since - 1:
                counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts


def scenario(
    name: str, env: dict[str, str], work: Path, fake: FakeLLMServer, args: argparse.Namespace,
    *, honour_retry_after: bool,
) -> dict:  # fmt: skip
    """Start a server with ``env``, load it, stop it, and check nothing accepted was lost."""
    port = free_port()
    process = start_server(env, port, work / f"{name}.log")
    llm_before = len(fake.requests)
    since = time.time()
    try:
        result = load(port, args.clients, args.seconds, honour_retry_after=honour_retry_after)
    finally:
        process.terminate()
        process.wait(timeout=120)
    result["llm_calls"] = len(fake.requests) - llm_before
    result["audit"] = audited(Path(env["NARRATE_AUDIT_DIR"]), since)
    return result


def main() -> None:
    """Run the three measurements and print them with their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3, help="LLM think time, s")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="narrate-bench-") as tmp,
        FakeLLMServer(
            latency_s=args.latency, reply="A short description of the image for the benchmark."
        ) as fake,
    ):
        work = Path(tmp)
        env = base_env(fake.base_url, work)
        base = baseline(env, work / "baseline", 8, min(args.seconds, 30.0))
        full = scenario("default", env, work, fake, args, honour_retry_after=True)
        low_env = {**env, "NARRATE_API_CONCURRENCY": "2", "NARRATE_API_MAX_QUEUE": "2"}
        low = scenario("low-queue", low_env, work, fake, args, honour_retry_after=True)
    load_after = os.getloadavg()

    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores)")
    print(f"LLM latency {args.latency * 1000:.0f} ms, {args.clients} clients, {args.seconds:.0f} s")
    print(
        f"baseline (describe_one, 8 threads, no HTTP): {base['rps']:.2f} img/s, "
        f"p50 {base['p50']:.2f} s, p99 {base['p99']:.2f} s ({base['done']} images)"
    )
    for label, r in (("serve, queue 8+32", full), ("serve, queue 2+2", low)):
        print(
            f"{label}: {r['rps']:.2f} req/s ({r['rps'] / base['rps']:.2f}x baseline), "
            f"p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, ok {r['ok']}, 503 {r['busy_503']}, "
            f"errors {r['errors']} {r['error_samples']}"
        )
        accepted_audit = r["audit"].get(200, 0)
        print(
            f"  accepted and completed: clients saw {r['ok']} x 200, audit {accepted_audit} x 200, "
            f"LLM calls {r['llm_calls']}; audit statuses {r['audit']}"
        )
    print(json.dumps({"baseline": base, "default": full, "low_queue": low}, default=str))


if __name__ == "__main__":
    main()
