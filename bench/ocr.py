"""OCR on real-world inputs: narrate's engines against plain ``tesseract FILE -``, side by side.

One invocation generates the inputs (fixed seeds, known text) into a temporary folder:

* ``sign``: a 12-megapixel phone photo (4032x3024) of a six-line sign, light falling off
  across the frame, 3 degrees of tilt, sensor noise, JPEG;
* ``sign_dark``: its dark-mode twin (light text on a near-black panel);
* ``sign_tilted``: the sign at 2016x1512 turned to 7 degrees and dimmed to 0.8;
* ``long``: a 100x30000 scrolling screenshot with 750 short lines;
* ``bubbles``: a 1080x2400 phone chat with rounded bubbles, white text on blue (outgoing)
  and black on light grey (incoming), status bar, timestamps;
* ``bubbles_dark``: its dark-mode twin (black screen, white text on dark grey and on blue);
* ``bubbles_half``: the dark twin at half size (540x1200); ``bubbles_green``: the light chat
  with green (SMS) outgoing bubbles;
* ``web``: a 1280x800 web app page (white on a dark blue header bar, a grey sidebar, white
  labels on blue, green and red buttons, black body text);
* ``settings_dark``: a 1080x1600 dark-mode phone settings group with toggles;
* ``vertical_zh``: three columns of Simplified Chinese written top to bottom;
* ``rotated``: a page turned 90 degrees with no EXIF tag;
* ``transparent``: white text on a transparent background (RGBA PNG);
* ``dark_screen``: a dark-mode settings screenshot;
* ``mixed``: an English notice with one Chinese line;
* ``textfree``: a noisy outdoor-like photo with no writing (any word read is garbage);
* ``textfree12``: the same kind of photo at 12 megapixels (4032x3024), as phones save it;
* ``sky12``: a 12 MP photo of a clear evening sky (a smooth gradient and sensor noise);
* the committed samples ``receipt``, ``notice_zh``, ``page_uneven`` and ``sunset``.

For each input it runs plain tesseract (the baseline, ``OMP_THREAD_LIMIT=1``, default
``eng``, in a subprocess as a user would), then each narrate engine asked for (in this
process, engine built once, language ``auto``) and prints the recall (share of the expected
words / CJK characters found; for text-free inputs, 1 when nothing was reported), the words
reported on text-free inputs, the wall and CPU seconds (this process and its tesseract
children) and their ratios to plain tesseract's. On a shared machine the CPU seconds are the
steadier figure; wall seconds are what a user waits.

``--describe`` also times ``narrate describe`` (offline describer, fresh process, direct
engine) against plain tesseract on the same file, alternating, ``--runs`` times each after
a warm-up round, on the 12 MP sign photo or the inputs named by ``--describe-on``, and
reports the median wall and CPU seconds, their ratios, the peak memory of each, the recall
(for text-free inputs: 1 when no word was reported) and narrate's step timings.
``--other-tree DIR`` times another tree's ``narrate describe`` in the same rounds (a
before/after in one run, e.g. ``git archive main | tar -x -C DIR``).

    flock /tmp/bench.lock .venv/bin/python bench/ocr.py [--engines tesseract,rapidocr,auto]
        [--only sign,long] [--describe [--runs 5] [--describe-on sign,textfree12]
        [--other-tree DIR]]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import images as gen  # noqa: E402
from tests.images import SAMPLE_TEXTS, recall, sample_path  # noqa: E402

Input = tuple[str, Callable[[Path], tuple[Path, str]]]


def _saved(name: str, render: Callable[[], tuple[Any, str]], **save: Any) -> Input:
    def make(folder: Path) -> tuple[Path, str]:
        image, text = render()
        path = folder / name
        image.save(path, **save)
        return path, text

    return name.split(".")[0], make


def _halved(rendered: tuple[Any, str]) -> tuple[Any, str]:
    """A rendered image at half its width and height (Lanczos), with its text."""
    image, text = rendered
    return image.resize((image.width // 2, image.height // 2), resample=1), text


def _sample(kind: str, name: str) -> Input:
    return kind, lambda _folder: (sample_path(name), SAMPLE_TEXTS[name])


EXIT_BOLD: dict[str, Any] = {
    "font": gen.FONT_SANS_BOLD, "size_px": 90, "ground": (255, 255, 255), "ink": (0, 0, 0)
}  # fmt: skip
INPUTS: list[Input] = [
    _saved("sign.jpg", gen.render_sign_photo, quality=90),
    _saved("sign_dark.jpg", lambda: gen.render_sign_photo(dark=True), quality=90),
    _saved("sign_tilted.jpg", gen.render_dim_tilted_sign, quality=88),
    _saved("long.png", gen.render_long_screenshot),
    _saved("chat.png", gen.render_chat_screenshot),
    _saved("bubbles.png", gen.render_chat_bubbles),
    _saved("bubbles_dark.png", lambda: gen.render_chat_bubbles(dark=True)),
    _saved(
        "bubbles_half.png",
        lambda: _halved(gen.render_chat_bubbles(dark=True)),
    ),
    _saved("bubbles_green.png", lambda: gen.render_chat_bubbles(outgoing=(52, 199, 89))),
    _saved("web.png", gen.render_web_page),
    _saved("settings_dark.png", gen.render_dark_settings),
    _saved("vertical_zh.png", gen.render_vertical_chinese),
    _saved("rotated.png", gen.render_rotated_page),
    _saved("transparent.png", gen.render_transparent_text),
    _saved("dark_screen.png", gen.render_dark_screenshot),
    _saved("mixed.png", gen.render_mixed_page),
    _saved("textfree.jpg", lambda: (gen.render_textfree_photo(), ""), quality=88),
    _saved(
        "textfree12.jpg",
        lambda: (gen.render_textfree_photo(size=(4032, 3024)), ""),
        quality=90,
    ),
    _saved("sky12.jpg", lambda: (gen.render_sky_gradient(), ""), quality=90),
    # sure tesseract reads that left text out (a new user's trial, session 8)
    _saved("price_sign.jpg", gen.render_price_sign_photo, quality=90),
    _saved("settings_values.png", gen.render_settings_values),
    _saved("banner_zh.png", lambda: gen.render_banner("欢迎光临")),
    _saved(
        "banner_red.png",
        lambda: gen.render_banner("欢迎光临", ground=(200, 30, 30), ink=(255, 255, 255)),
    ),
    _saved("exit_bold.png", lambda: gen.render_banner("Exit this way", **EXIT_BOLD)),
    _sample("receipt", "receipt_en.png"),
    _sample("notice_zh", "notice_zh.png"),
    _sample("page_uneven", "page_uneven_light.jpg"),
    _sample("sunset", "photo_sunset.jpg"),
]


def cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (tesseract)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def plain_tesseract(path: Path) -> tuple[str, float, float]:
    """``tesseract FILE -`` as a user runs it: its text, wall seconds and CPU seconds."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    start, cpu = time.perf_counter(), cpu_s()
    done = subprocess.run(
        ["tesseract", str(path), "-"], env=env, capture_output=True, text=True, check=False
    )
    return done.stdout, time.perf_counter() - start, cpu_s() - cpu


def build_engine(name: str) -> Any:
    """A narrate OCR engine by its registry name, with its default settings."""
    from adapters import registry

    return registry.load("ocr", name)


def score(expected: str, text: str) -> str:
    """Recall, or for text-free inputs the words wrongly reported."""
    if expected:
        return f"{recall(expected, text):5.2f}"
    junk = len(text.split())
    return " 1.00" if junk == 0 else f"{junk:2d} w!"


def run(engines: list[str], only: set[str] | None, folder: Path) -> None:
    """Print one table row per input and engine."""
    built = {}
    for name in engines:
        start = time.perf_counter()
        built[name] = build_engine(name)
        if hasattr(built[name], "warm_up"):
            built[name].warm_up()
        print(f"# {name}: built in {time.perf_counter() - start:.2f} s")
    print(
        f"{'input':12} {'size':>11} {'engine':10} {'recall':>6} {'wall_s':>7} {'x plain':>7} "
        f"{'cpu_s':>7} {'x plain':>7}"
    )
    for kind, make in INPUTS:
        if only and kind not in only:
            continue
        path, expected = make(folder)
        from PIL import Image

        with Image.open(path) as im:
            size = f"{im.width}x{im.height}"
        text, plain_s, plain_cpu = plain_tesseract(path)
        print(
            f"{kind:12} {size:>11} {'plain':10} {score(expected, text)} {plain_s:7.2f} {1:7.2f} "
            f"{plain_cpu:7.2f} {1:7.2f}"
        )
        for name, engine in built.items():
            start, cpu = time.perf_counter(), cpu_s()
            try:
                result = engine.recognize(path, "auto")
                text, note = result.text, ""
            except Exception as exc:  # a benchmark reports failures and goes on
                text, note = "", f"  FAILED: {exc}"[:160]
            seconds, used = time.perf_counter() - start, cpu_s() - cpu
            print(
                f"{kind:12} {size:>11} {name:10} {score(expected, text)} {seconds:7.2f} "
                f"{seconds / plain_s:7.2f} {used:7.2f} {used / max(plain_cpu, 1e-3):7.2f}{note}",
                flush=True,
            )


def describe_vs_tesseract(
    folder: Path, runs: int, kind: str = "sign", other: Path | None = None
) -> None:
    """``narrate describe`` (fresh process, offline) vs ``tesseract FILE -`` on input ``kind``.

    The commands alternate ``runs`` times after one untimed run of each (page cache,
    narrate's bytecode); medians of wall seconds and of CPU seconds (user + system, the
    process and its children) are compared, as the machine is shared. ``other``: another
    tree of narrate (e.g. ``git archive main``) whose ``describe`` is timed alongside, a
    before/after in one run.
    """
    path, expected = dict(INPUTS)[kind](folder)
    print(f"# narrate describe vs plain tesseract on {kind} ({path.name})")
    env = {
        **os.environ,
        "NARRATE_LLM_BACKEND": "offline",
        "NARRATE_CACHE_BACKEND": "off",
        "OMP_THREAD_LIMIT": "1",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed narrate has its bytecode
    trees = {"narrate describe": REPO, **({"other tree describe": other} if other else {})}
    commands: dict[str, list[str]] = {"plain tesseract": ["tesseract", str(path), "-"]}
    for label in trees:
        out = folder / f"out-{kind}-{len(commands)}"
        commands[label] = [
            sys.executable, "-m", "narrate.cli.main", "describe", str(path), "--out", str(out),
        ]  # fmt: skip
    timed: dict[str, list[tuple[float, float, float]]] = {label: [] for label in commands}
    recalls: dict[str, float] = {}
    for attempt in range(runs + 1):
        for label, command in commands.items():
            timer = ["/usr/bin/time", "-f", "%e %U %S %M", *command]
            tree = trees.get(label, REPO)  # ``-m`` puts the working folder first on the path
            tree_env = {**env, "PYTHONPATH": str(tree)}
            done = subprocess.run(
                timer, cwd=tree, env=tree_env, capture_output=True, text=True, check=False
            )
            wall, user, system, peak_kib = done.stderr.strip().splitlines()[-1].split()
            text = done.stdout
            if label in trees:
                json_files = list(Path(command[-1]).glob("*.json"))
                data = json.loads(json_files[0].read_text(encoding="utf-8")) if json_files else {}
                text = str(data.get("ocr_text", ""))
            recalls[label] = recall(expected, text) if done.returncode == 0 else 0.0
            if attempt:  # the first round warms up
                timed[label].append((float(wall), float(user) + float(system), int(peak_kib)))
    medians = {}
    for label, rows in timed.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        peak = max(r[2] for r in rows) / 1024
        medians[label] = (wall, cpu)
        walls = " ".join(f"{r[0]:.2f}" for r in rows)
        print(
            f"{label:17} median {wall:5.2f} s wall, {cpu:5.2f} s CPU, peak RSS {peak:4.0f} MiB, "
            f"recall {recalls[label]:.2f}  (walls: {walls})"
        )
    t_wall, t_cpu = medians["plain tesseract"]
    for label in trees:
        n_wall, n_cpu = medians[label]
        print(f"{label} / plain tesseract: {n_wall / t_wall:.2f} wall, {n_cpu / t_cpu:.2f} CPU")
    out = Path(commands["narrate describe"][-1])
    data = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))
    steps = ", ".join(f"{k} {v:.2f}" for k, v in data["timings"].items())
    print(f"last narrate run's step timings (s): {steps}")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="tesseract", help="comma-separated OCR engines")
    parser.add_argument("--only", default="", help="comma-separated input kinds")
    parser.add_argument("--describe", action="store_true", help="time narrate describe too")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (--describe)")
    parser.add_argument(
        "--describe-on", default="sign", help="comma-separated input kinds for --describe"
    )
    parser.add_argument(
        "--other-tree", type=Path, help="another narrate tree whose describe is timed too"
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    load = os.getloadavg()
    print(f"# load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        folder = Path(tmp)
        engines = [e for e in args.engines.split(",") if e]
        only = {k for k in args.only.split(",") if k} or None
        run(engines, only, folder)
        if args.describe:
            for kind in (k for k in args.describe_on.split(",") if k):
                describe_vs_tesseract(folder, args.runs, kind, args.other_tree)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    print(f"# bench process peak RSS {peak:.0f} MiB; load average at end: {load[0]:.2f}")


if __name__ == "__main__":
    main()
