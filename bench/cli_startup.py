"""How long a person waits for ``narrate describe`` on one image: cold and warm, per engine.

Runs the real CLI in fresh processes (offline describer, so no network wait is counted):

- direct engine, cold: the OS page cache is dropped first (needs root; skipped otherwise),
  so Python, numpy, Pillow and tesseract's language data come from disk;
- direct engine, warm: the same command again;
- direct engine, repeat: the same image again with the content cache on (OCR and features
  come from the cache; the offline description and the speech are made again);
- prefect engine with a temporary server (the baseline: what a flow run costs with no
  PREFECT_API_URL), warm.

Except for the repeat row the cache is off, so every run does the OCR.

    .venv/bin/python bench/cli_startup.py [--runs 5] [--image assets/samples/receipt_en.png]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drop_page_cache() -> bool:
    """Drop the OS page cache (root only); True when it worked."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def run_cli(image: Path, engine: str, out: Path, cache: Path | None = None) -> float:
    """Wall seconds of one ``narrate describe`` process (``cache``: the cache file to use)."""
    env = {
        **os.environ,
        "NARRATE_LLM_BACKEND": "offline",
        "NARRATE_CACHE_BACKEND": "sqlite" if cache else "off",
        "NARRATE_CACHE_PATH": str(cache or out / "unused.sqlite3"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "narrate.cli.main", "describe", str(image), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--engine", engine], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", type=Path, default=ROOT / "assets/samples/receipt_en.png")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="narrate-bench-"))

    rows: list[tuple[str, list[float]]] = []
    cold: list[float] = []
    for _ in range(args.runs):
        if not drop_page_cache():
            break
        cold.append(run_cli(args.image, "direct", out))
    if cold:
        rows.append(("direct, cold page cache", cold))
    rows.append(("direct, warm", [run_cli(args.image, "direct", out) for _ in range(args.runs)]))
    cache = out / "cache.sqlite3"
    run_cli(args.image, "direct", out, cache)  # fills the cache
    rows.append(
        (
            "direct, repeat (OCR+features cached)",
            [run_cli(args.image, "direct", out, cache) for _ in range(args.runs)],
        )
    )
    prefect_runs = max(2, args.runs // 2)
    rows.append(
        (
            "prefect, temporary server (baseline)",
            [run_cli(args.image, "prefect", out) for _ in range(prefect_runs)],
        )
    )
    baseline = statistics.median(rows[-1][1])
    print(f"narrate describe {args.image.name} (offline describer), wall seconds")
    print(f"{'engine':40} {'runs':>4} {'median':>8} {'min':>7} {'max':>7} {'vs prefect':>10}")
    for name, values in rows:
        median = statistics.median(values)
        print(
            f"{name:40} {len(values):>4} {median:>8.2f} {min(values):>7.2f} "
            f"{max(values):>7.2f} {baseline / median:>9.1f}x"
        )


if __name__ == "__main__":
    main()
