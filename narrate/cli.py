"""The ``narrate`` command line.

Sub-commands import what they need when they run, so ``narrate --help`` is instant and a
one-image ``describe`` does not pay for Prefect unless it runs through a Prefect server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from narrate import __version__

EPILOG = """\
settings (environment):
  NARRATE_LLM_BACKEND    auto | openai | offline (auto: openai when a key or base URL is set)
  DASHSCOPE_API_KEY      the Model Studio key (or NARRATE_LLM_API_KEY)
  NARRATE_LLM_BASE_URL   an OpenAI-compatible base URL (default: Model Studio Beijing)
  NARRATE_LLM_MODEL      default qwen3-max
  PREFECT_API_URL        a Prefect server: runs are recorded there and shown in its UI
See README.md for every setting.
"""


def _engine(choice: str) -> str:
    """``auto`` means Prefect when a Prefect server is configured, else the direct engine."""
    if choice != "auto":
        return choice
    return "prefect" if os.environ.get("PREFECT_API_URL") else "direct"


def _error_line(exc: BaseException, debug: bool) -> str:
    from narrate.errors import NarrateError

    if debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, NarrateError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def cmd_describe(args: argparse.Namespace) -> int:
    """Describe each image aloud; one failure does not stop the others."""
    from narrate.settings import load_settings

    settings = load_settings()
    out_dir = Path(args.out) if args.out else settings.out_dir
    engine = _engine(args.engine)
    if engine == "prefect":
        from flows.image_to_speech import image_to_speech

        def run(image: Path) -> Any:
            return image_to_speech(image, out_dir=out_dir, lang=args.lang)
    else:
        from narrate.pipeline import describe_one, plain_steps

        steps = plain_steps()

        def run(image: Path) -> Any:
            return describe_one(
                image, out_dir=out_dir, lang=args.lang, settings=settings, steps=steps
            )

    records: list[dict[str, Any]] = []
    failures = 0
    for image in args.images:
        image = Path(image)
        try:
            result = run(image)
        except Exception as exc:
            failures += 1
            reason = _error_line(exc, args.debug)
            records.append({"image_path": str(image), "ok": False, "error": reason})
            print(f"narrate: failed: {reason}", file=sys.stderr)
            continue
        records.append({"ok": True, **result.to_dict()})
        if not args.json:
            print(f"{image}:\n  {result.description}\n  audio: {result.audio_path}")
    if args.json:
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    done = len(records) - failures
    if not args.json:
        print(f"{done} of {len(records)} image(s) described; results in {out_dir}/")
    if failures:
        print(f"narrate: {failures} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="narrate",
        description="Turn images into speech, and answer spoken questions about images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"narrate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    describe = sub.add_parser(
        "describe",
        help="describe images aloud: <out>/<stem>.wav and <stem>.json per image",
        description="OCR each image, measure its features, describe it with the LLM (or "
        "offline), and speak the description into a WAV file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    describe.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    describe.add_argument("--out", metavar="DIR", help="output folder (default ./narrate-out)")
    describe.add_argument(
        "--lang", choices=("auto", "en", "zh"), default="auto", help="text language (auto)"
    )
    describe.add_argument("--json", action="store_true", help="print the results as JSON")
    describe.add_argument(
        "--engine",
        choices=("auto", "direct", "prefect"),
        default="auto",
        help="prefect: run as a Prefect flow (recorded in the UI); direct: same steps in "
        "this process without Prefect (fast start); auto: prefect when PREFECT_API_URL is "
        "set, else direct",
    )
    describe.add_argument("--debug", action="store_true", help="show tracebacks")
    describe.set_defaults(func=cmd_describe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("narrate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # settings errors and the like: one line, no traceback
        print(f"narrate: error: {_error_line(exc, getattr(args, 'debug', False))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
