"""The ``narrate`` command line.

Sub-commands import what they need when they run, so ``narrate --help`` is instant and a
one-image ``describe`` does not pay for Prefect unless it runs through a Prefect server.
"""

from __future__ import annotations

import argparse
import gc
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


def _engine(choice: str, *, prefect: bool = False) -> str:
    """``auto`` means Prefect when a Prefect server is configured (or ``prefect``), else direct.

    Raises:
        ConfigError: Prefect was chosen and ``PREFECT_API_URL`` names a server that does not
            answer (one line, before any image is touched).
    """
    from narrate.ops.prefect_server import require_prefect_server, resolve_engine

    url = os.environ.get("PREFECT_API_URL")
    choice = resolve_engine(choice, prefect=prefect)
    if choice == "prefect" and url:
        instead = "drop --runner dask and use --engine direct" if prefect else "use --engine direct"
        require_prefect_server(url, instead=instead)
    elif choice == "prefect":
        # Prefect starts a throwaway server for the run: it need not report usage (offline,
        # its failed attempt is an ERROR line on the user's console). Set it to override.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return choice


def _one_line_per_failure(engine: str, debug: bool) -> None:
    """Under Prefect, each failure on the console is narrate's one line, not Prefect's too.

    Prefect's task and flow engines log a failed run as several ERROR lines repeating the
    reason (``flows._outcome.RunFailureConsoleFilter``); the CLI prints one line per failure
    itself, so those stay off this console (and off the consoles of Dask workers the flow
    starts). The Prefect server still records them. ``--debug`` keeps them.
    """
    if engine == "prefect" and not debug:
        from flows._outcome import CLI_REPORTS_FAILURES

        os.environ[CLI_REPORTS_FAILURES] = "1"


def _error_line(exc: BaseException, debug: bool, item: Path | None = None) -> str:
    """One line a person can act on; ``item`` (the file being worked on) leads it."""
    from adapters.errors import AdapterError, InputError, NarrateError

    if debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, NarrateError):
        line = str(exc)
        if (
            isinstance(exc, AdapterError)
            and "could not connect" in line
            and "NARRATE_LLM_BACKEND=offline" not in line
        ):
            line += (
                " — check the network and NARRATE_LLM_BASE_URL, or describe offline with "
                "NARRATE_LLM_BACKEND=offline (or NARRATE_LLM_FALLBACK_MODELS=offline)"
            )
    elif isinstance(exc, RuntimeError) and "Failed to reach API at" in str(exc):
        # Prefect's client, when the server went away during the run (checked before it)
        from narrate.ops.prefect_server import START_HINT

        where = str(exc).rsplit("Failed to reach API at", 1)[1].strip().rstrip(".")
        line = (
            f"the Prefect server at {where} stopped answering during the run: {START_HINT} "
            "again and run the command again (finished outputs are kept), or use --engine direct"
        )
    else:
        line = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    named = isinstance(exc, InputError) and exc.path is not None
    return line if item is None or named else f"{item}: {line}"


def _unique_stems(images: Sequence[str]) -> list[str]:
    """Output names: each image's stem, numbered when two images share one.

    a/x.png and b/x.png give x and x-2, so no result overwrites another.
    """
    seen: dict[str, int] = {}
    stems = []
    for image in images:
        stem = Path(image).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _out_dir(path: Path) -> Path:
    """``path`` as the output folder; refused once, before any image, if it is not one.

    Raises:
        ConfigError: ``path`` exists and is not a folder.
    """
    if path.exists() and not path.is_dir():
        from adapters.errors import ConfigError

        raise ConfigError(f"the output folder {path} is a file: give --out a folder")
    return path


def _named_inputs(inputs: Sequence[str]) -> list[str]:
    """``inputs`` as given, unless none of them exists: then refused once, creating nothing.

    A missing file among others fails as an item of the batch, which goes on; a batch whose
    every input is a missing path (a typo in the one folder named) has nothing to do.

    Raises:
        ConfigError: every input is a path (not a glob) that does not exist.
    """
    from narrate.pipeline.batch import is_glob
    from narrate.pipeline.results import on_disk

    missing = [i for i in inputs if not is_glob(i) and not on_disk(Path(i).expanduser()).exists()]
    if missing and len(missing) == len(inputs):
        from adapters.errors import ConfigError

        names = ", ".join(_readable(i) for i in missing)
        raise ConfigError(f"no such file or folder: {names}; nothing was done")
    return list(inputs)


def _question(text: str) -> str:
    """An argparse type: a typed question with something in it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty: type one, or speak it (--audio)")
    return text


def _readable(name: str) -> str:
    from narrate.pipeline.results import readable

    return readable(name)


def _for_flow(path: Path) -> Path:
    """``path`` as a flow parameter.

    Flow parameters travel as JSON, so a non-UTF-8 name goes as ``readable`` shows it, and the
    flow finds the file by that name (``narrate.pipeline.results.on_disk``).
    """
    return Path(_readable(str(path)))


def cmd_describe(args: argparse.Namespace) -> int:
    """Describe each image aloud; one failure does not stop the others."""
    engine = _engine(args.engine)
    _one_line_per_failure(engine, args.debug)
    if engine == "direct":
        from narrate.cli.head_start import read_first_image_ahead

        # OCR starts on the first image while Python imports the rest (narrate/cli/head_start.py)
        read_first_image_ahead(args.images[0], args.lang)
    from narrate.config.settings import load_settings

    settings = load_settings()
    out_dir = _out_dir(Path(args.out) if args.out else settings.out_dir)
    fresh = not out_dir.exists()  # made by this run: not left behind empty
    if engine == "prefect":
        from flows.image_to_speech import image_to_speech

        def run(image: Path, stem: str) -> Any:
            return image_to_speech(
                _for_flow(image), out_dir=_for_flow(out_dir), lang=args.lang, stem=_readable(stem)
            )
    else:
        from narrate.ops.metrics import unrecorded
        from narrate.pipeline.sequence import describe_one, plain_steps

        steps = plain_steps(settings.llm.cache, warm_up=True)

        def run(image: Path, stem: str) -> Any:
            with unrecorded():  # nothing here serves or pushes them
                return describe_one(
                    image, out_dir=out_dir, lang=args.lang, settings=settings, steps=steps,
                    stem=stem,
                )  # fmt: skip

    from adapters.errors import ConfigError
    from narrate.pipeline.steps import check_voices

    records: list[dict[str, Any]] = []
    failures = 0
    stopped: ConfigError | None = None
    try:
        check_voices(settings.tts)  # a wrong voice: said before any image is read
    except ConfigError as exc:
        stopped = exc
    todo = [] if stopped else zip(args.images, _unique_stems(args.images), strict=True)
    for image, stem in todo:
        image = Path(image)
        try:
            result = run(image, stem)
        except ConfigError as exc:  # a setting, not this image: every other one would fail too
            stopped = exc
            break
        except Exception as exc:
            failures += 1
            reason = _error_line(exc, args.debug, image)
            if image.is_dir():
                reason += f" (`narrate batch {_readable(str(image))}` describes every image in it)"
            records.append({"image_path": str(image), "ok": False, "error": reason})
            print(f"narrate: failed: {reason}", file=sys.stderr)
            continue
        records.append({"ok": True, **result.to_dict()})
        if not args.json:
            print(f"{_readable(str(image))}:\n  {result.description}\n  audio: {result.audio_path}")
    if args.json:
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    done = len(records) - failures
    if stopped is not None:
        untried = len(args.images) - len(records)
        print(f"narrate: error: {_error_line(stopped, args.debug)}", file=sys.stderr)
        print(f"narrate: stopped; {untried} image(s) not described", file=sys.stderr)
    elif not args.json:
        where = f"; results in {out_dir}/" if done else ""
        print(f"{done} of {len(records)} image(s) described{where}")
    if failures:
        print(f"narrate: {failures} image(s) failed", file=sys.stderr)
    _remove_if_left_empty(out_dir, fresh)
    return 1 if failures or stopped else 0


def _remove_if_left_empty(out_dir: Path, fresh: bool) -> None:
    """Remove ``out_dir`` if this run created it (``fresh``) and wrote nothing in it."""
    if fresh and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a spoken or typed question about an image, aloud."""
    from narrate.config.settings import load_settings

    settings = load_settings()
    out_dir = _out_dir(Path(args.out) if args.out else settings.out_dir)
    fresh = not out_dir.exists()
    image = Path(args.image)
    audio = Path(args.audio) if args.audio else None
    engine = _engine(args.engine)  # an unreachable Prefect server is no fault of the image
    _one_line_per_failure(engine, args.debug)
    try:
        from narrate.pipeline.steps import check_voices

        check_voices(settings.tts)  # a wrong voice: said before OCR and the LLM run
        if engine == "prefect":
            from flows.voice_qa import voice_qa

            result = voice_qa(
                _for_flow(image), question_audio=_for_flow(audio) if audio else None,
                question_text=args.question, out_dir=_for_flow(out_dir), lang=args.lang,
            )  # fmt: skip
        else:
            from narrate.pipeline.sequence import answer_one, plain_steps

            result = answer_one(
                image, question_text=args.question, question_audio=audio, out_dir=out_dir,
                lang=args.lang, settings=settings, steps=plain_steps(settings.llm.cache),
            )  # fmt: skip
    except Exception as exc:
        from adapters.errors import ConfigError

        setting = isinstance(exc, ConfigError)  # a setting, not this image, is at fault
        reason = _error_line(exc, args.debug, None if setting else image)
        if args.json:
            json.dump({"image_path": str(image), "ok": False, "error": reason}, sys.stdout)
            sys.stdout.write("\n")
        print(f"narrate: {'error' if setting else 'failed'}: {reason}", file=sys.stderr)
        _remove_if_left_empty(out_dir, fresh)
        return 1
    if args.json:
        json.dump({"ok": True, **result.to_dict()}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        if audio is not None:
            print(f"question (heard): {result.question}")
        print(f"answer: {result.answer}\naudio: {result.audio_path}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """Serve narrate's Prometheus metrics until interrupted."""
    from narrate.ops.metrics import run_metrics_command

    return run_metrics_command(args.port, args.addr)


class _ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self.tty = sys.stderr.isatty()
        self.counts: dict[str, int] = {"ok": 0, "skipped": 0, "failed": 0}
        self.last_tenth = -1

    def __call__(self, done: int, total: int, outcome: Any) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status == "failed":  # each failure as it happens, one line with its hint
            clear = "\r\033[K" if self.tty else ""
            # the reason names the file already when it came from the image's loader
            what = (
                outcome.reason
                if outcome.item in outcome.reason
                else f"{outcome.item}: {outcome.reason}"
            )
            print(f"{clear}narrate: failed: {what}", file=sys.stderr)
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items())
        line = f"[{bar}] {done}/{total} ({counts})"
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        elif (tenth := 10 * done // max(total, 1)) != self.last_tenth or done >= total:
            self.last_tenth = tenth
            print(line, file=sys.stderr, flush=True)


def _warn_unmatched(inputs: list[str], out_dir: Path) -> None:
    """A warning line per folder or glob that names no image, when other inputs name some.

    When none does, the batch refuses to start (``BatchRun``), with one error line.
    """
    from narrate.pipeline.batch import nothing_in, unmatched_inputs

    unmatched = unmatched_inputs(inputs, out_dir)
    if len(unmatched) < len(inputs):
        for spec in unmatched:
            print(f"narrate: warning: {nothing_in(spec)}", file=sys.stderr)


def cmd_batch(args: argparse.Namespace) -> int:
    """Describe every image of folders, globs or files; resumable, with a summary."""
    from narrate.config.settings import load_settings
    from narrate.pipeline.batch import progress_listener, run_direct
    from narrate.pipeline.budget import tokens_line

    inputs = _named_inputs([str(i) for i in args.inputs])
    settings = load_settings()
    out_dir = _out_dir(Path(args.out) if args.out else settings.out_dir)
    engine = _engine(args.engine, prefect=args.runner == "dask")
    _one_line_per_failure(engine, args.debug)
    if args.runner == "dask":
        # Dask's INFO lines (scheduler, nannies, workers: dozens per run) would bury
        # narrate's own; its warnings and errors still show. Set it to override.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    if args.dask_address:
        if args.runner != "dask":
            print("narrate: --dask-address needs --runner dask", file=sys.stderr)
            return 2
        from flows.batch import check_cluster

        check_cluster(args.dask_address)  # before a temporary Prefect server is started
    if engine == "direct" and args.runner != "thread":
        print("narrate: --runner dask needs --engine prefect", file=sys.stderr)
        return 2
    if engine == "prefect" and args.runner == "dask" and not args.dask_address:
        from flows.dask_preload import start_forkserver

        start_forkserver()  # the local cluster's workers import while this process does
    _warn_unmatched(inputs, out_dir)
    if engine == "direct":
        summary = run_direct(
            inputs, out_dir, settings=settings, lang=args.lang, concurrency=args.concurrency,
            on_progress=_ProgressBar(), token_budget=args.token_budget,
        ).to_dict()  # fmt: skip
    else:
        if not os.environ.get("PREFECT_API_URL"):
            print(
                "narrate: starting a temporary Prefect server (10-20 s); set PREFECT_API_URL "
                "to record runs on a running server, or use --engine direct",
                file=sys.stderr,
            )
        from flows.batch import batch_describe

        inputs, out_dir = [_readable(i) for i in inputs], _for_flow(out_dir)
        with progress_listener(_ProgressBar()):
            state = batch_describe(
                inputs if len(inputs) > 1 else inputs[0], out_dir=out_dir,
                concurrency=args.concurrency, lang=args.lang, runner=args.runner,
                dask_address=args.dask_address, token_budget=args.token_budget,
                return_state=True,
            )  # fmt: skip
        # A run in which every image failed ends Failed but still carries its summary.
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            raise outcome
        summary = outcome
    if args.json:
        json.dump(summary, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        done_before = summary["skipped"] - summary["skipped_budget"] - summary["skipped_setting"]
        print(
            f"{summary['ok']} described, {done_before} skipped (done before), "
            f"{summary['failed']} failed of {summary['total']} in {summary['seconds']:.1f} s; "
            f"results in {out_dir}/, summary in {summary['summary_csv']}"
        )
        print(tokens_line(summary))
    if summary["failed"]:
        print(f"narrate: {summary['failed']} image(s) failed; see the summary", file=sys.stderr)
    if summary["skipped_setting"]:
        print(
            f"narrate: stopped: a setting is wrong (see the failure above); "
            f"{summary['skipped_setting']} image(s) not tried: fix it and run again to resume",
            file=sys.stderr,
        )
    return 1 if summary["failed"] else 0


def _pipeline_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, *, summary: str, text: str
) -> argparse.ArgumentParser:
    """A sub-command that runs the pipeline; its --help ends with the settings epilog.

    Args:
        sub: the parser's sub-commands.
        name: the command's name.
        summary: its line in ``narrate --help``.
        text: the description atop its own --help.

    Returns:
        The new sub-command's parser.
    """
    return sub.add_parser(
        name,
        help=summary,
        description=text,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_out_and_lang(parser: argparse.ArgumentParser) -> None:
    """--out and --lang, taken by every command that runs the pipeline."""
    parser.add_argument("--out", metavar="DIR", help="output folder (default ./narrate-out)")
    parser.add_argument(
        "--lang", choices=("auto", "en", "zh"), default="auto", help="text language (auto)"
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that handle one image (describe, ask)."""
    _add_out_and_lang(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--engine",
        choices=("auto", "direct", "prefect"),
        default="auto",
        help="prefect: run as a Prefect flow (recorded in the UI); direct: same steps in "
        "this process without Prefect (fast start); auto: prefect when PREFECT_API_URL is "
        "set, else direct",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


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

    describe = _pipeline_command(
        sub,
        "describe",
        summary="describe images aloud: <out>/<stem>.wav and <stem>.json per image",
        text="OCR each image, measure its features, describe it with the LLM (or "
        "offline), and speak the description into a WAV file. Images of one call with the "
        "same stem are numbered in the order given: a/x.png b/x.jpg -> x, x-2.",
    )
    describe.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _add_common(describe)
    describe.set_defaults(func=cmd_describe)

    ask = _pipeline_command(
        sub,
        "ask",
        summary="answer a spoken or typed question about an image, aloud",
        text="Transcribe the question (whisper) while reading the image, answer it "
        "from the image's text and features, and speak the answer into "
        "<out>/<stem>.answer.wav (+ .answer.json).",
    )
    ask.add_argument("image", metavar="IMAGE", help="the image the question is about")
    question = ask.add_mutually_exclusive_group(required=True)
    question.add_argument(
        "--audio", metavar="Q.wav", help="the question, spoken (WAV/FLAC/OGG/MP3)"
    )
    question.add_argument("--question", type=_question, metavar="TEXT", help="the question, typed")
    _add_common(ask)
    ask.set_defaults(func=cmd_ask)

    batch = _pipeline_command(
        sub,
        "batch",
        summary="describe every image of folders, globs or files; resumable, with a summary",
        text="Describe many images with bounded concurrency: <out>/<name>.json + .wav "
        "per image, <out>/manifest.jsonl (a rerun skips finished images, a killed run "
        "resumes), <out>/summary.json and summary.csv. Same-named images in different "
        "folders keep their subfolder under <out>.",
    )
    batch.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="a folder, a quoted glob or image files"
    )
    _add_out_and_lang(batch)
    batch.add_argument(
        "--concurrency",
        type=_at_least_one,
        default=8,
        metavar="N",
        help="images in flight (default 8)",
    )
    batch.add_argument(
        "--engine",
        choices=("auto", "prefect", "direct"),
        default="auto",
        help="prefect: the batch-describe flow, recorded in the Prefect UI (a temporary "
        "server starts when PREFECT_API_URL is unset); direct: the same steps on a thread "
        "pool without Prefect; auto (default): prefect when PREFECT_API_URL is set or "
        "--runner dask is asked for, else direct",
    )
    batch.add_argument(
        "--runner",
        choices=("thread", "dask"),
        default="thread",
        help="where the flow's tasks run: threads here, or a Dask cluster (prefect-dask)",
    )
    batch.add_argument(
        "--dask-address", metavar="ADDR", help="a running Dask scheduler (default: LocalCluster)"
    )
    batch.add_argument(
        "--token-budget", type=int, metavar="N", help="LLM tokens this run may use "
        "(default NARRATE_LLM_TOKEN_BUDGET); the rest is skipped and left for a later run",
    )  # fmt: skip
    batch.add_argument("--json", action="store_true", help="print the summary as JSON")
    batch.add_argument("--debug", action="store_true", help="show tracebacks")
    batch.set_defaults(func=cmd_batch)

    from narrate.cli.models import register as register_models

    register_models(sub)
    from narrate.service.command import register as register_serve

    register_serve(sub)

    from narrate.cli.doctor import register as register_doctor

    register_doctor(sub)

    metrics = sub.add_parser(
        "metrics",
        help="serve Prometheus metrics on /metrics until interrupted",
        description="Serve this process's narrate metrics for Prometheus to scrape.",
    )
    metrics.add_argument("--port", type=int, default=9464, help="TCP port (default 9464)")
    metrics.add_argument("--addr", default="127.0.0.1", help="address to bind (127.0.0.1)")
    metrics.set_defaults(func=cmd_metrics)
    for command in sub.choices.values():  # its own usage for what it does not take
        command.set_defaults(command_parser=command)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with arguments a sub-command does not take refused by it.

    argparse leaves them to the top-level parser, which printed narrate's usage for
    ``narrate ask a.png b.png``; the sub-command's usage and what is wrong help more.

    Raises:
        SystemExit: status 2 after the usage and the error line, as argparse does.
    """
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    command: argparse.ArgumentParser = getattr(args, "command_parser", parser)
    if args.command == "ask" and not any(e.startswith("-") for e in extra):
        images = ", ".join([args.image, *extra])
        command.error(
            f"ask takes one IMAGE, got {1 + len(extra)} ({images}): ask about one image at a time"
        )
    command.error(f"unrecognized arguments: {' '.join(extra)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = _parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from narrate.config.secrets import install_redaction

    install_redaction()
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a reader that went away is seen here
        return code
    except BrokenPipeError:  # `narrate ... | head -1`: end quietly, as other tools do
        # Python would flush stdout again at exit and complain: point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a writer ended by SIGPIPE (128 + 13)
    except KeyboardInterrupt:
        print("narrate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # settings errors and the like: one line, no traceback
        print(f"narrate: error: {_error_line(exc, getattr(args, 'debug', False))}", file=sys.stderr)
        return 1


def run() -> None:
    """The ``narrate`` program: ``main()``, then exit with its status.

    The objects alive at the end are frozen (``gc.freeze``) so that the interpreter's final
    garbage collection skips them: every output has been written and closed by then, and the
    operating system reclaims the memory at once. That collection took 0.15-0.35 s after a
    12 MP ``narrate describe`` on a loaded 2-core machine (from the last ``atexit`` handler
    to the process's end; 0.07-0.11 s with the freeze), a fifth of the run. ``atexit``
    handlers still run. ``main`` itself leaves the collector alone, for callers that go on.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
