"""``narrate doctor``: the sub-command (the checks live in ``narrate.ops.doctor``)."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Check this installation and say how to fix what is wrong: tesseract and its language packs,
espeak-ng and the configured voices, the ASR engine and its pinned weights, every LLM region
(DNS, TCP, TLS, GET /models, a one-token chat call with the configured key), the Prefect
server (PREFECT_API_URL), Redis (when the cache uses it), the cache/audit/output folders and
the metrics port. Exit status 1 when a required check FAILs.

The chat call costs a few tokens per region. The key is never printed."""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``doctor`` to the CLI's sub-commands."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check the installation (OCR, voices, ASR, LLM regions, services) and print fixes",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--curl",
        action="store_true",
        help="also print the chat call as a curl command per region, the key written as "
        "$DASHSCOPE_API_KEY (for support tickets)",
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds allowed for each network step and each tool (default 10)",
    )
    doctor.add_argument(
        "--only",
        action="append",
        metavar="GROUP",
        choices=("tesseract", "tts", "asr", "llm", "prefect", "redis", "folders", "metrics"),
        help="run only this group of checks (repeatable): tesseract, tts, asr, llm, prefect, "
        "redis, folders, metrics",
    )
    doctor.add_argument("--debug", action="store_true", help="show tracebacks")
    doctor.set_defaults(func=run_doctor)
    return doctor


def run_doctor(args: argparse.Namespace) -> int:
    """Run the checks, print the report (and curl commands); 1 when a check FAILed."""
    from adapters.errors import ConfigError
    from narrate.config.settings import Settings, load_settings
    from narrate.ops.doctor import curl_command, run_checks

    settings: Settings | ConfigError
    try:
        settings = load_settings()
    except ConfigError as exc:  # a check of its own; the checks that need no settings still run
        settings = exc
    report = run_checks(settings, timeout_s=args.timeout, only=args.only)
    curls = []
    if args.curl and isinstance(settings, Settings):
        llm = settings.llm
        curls = [curl_command(url, llm.model, llm.timeout_s) for url in llm.endpoints]
    if args.json:
        data = report.to_dict()
        if args.curl:
            data["curl"] = curls
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.to_text())
        for command in curls:
            print(f"\n# the chat call, by hand (export DASHSCOPE_API_KEY first):\n{command}")
    return report.exit_code
