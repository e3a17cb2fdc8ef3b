"""Speech synthesis with pyttsx3 on espeak-ng, made dependable.

Two races in pyttsx3 2.99's espeak driver lose WAV files without raising (measured here):

* espeak-ng runs in asynchronous retrieval mode, and the first ``runAndWait()`` of a process
  returns as soon as synthesis is *queued*: the WAV appears milliseconds later, written by
  espeak-ng's thread (a one-shot CLI may exit first), and a second queued save steals the
  first one's audio. Later calls happen to block, which is why only the first text was lost.
* espeak-ng applies the speech rate on its own thread and meanwhile reports "playing"; when
  ``runAndWait()`` sees that, the driver raises a stop flag that cancels the *next* text.
  ``init()`` itself sets the rate, so the first synthesis of a process is at risk.

So this adapter:

* keeps ONE engine per process (pyttsx3 caches it anyway) behind a module-level lock, because
  Prefect runs tasks in threads and the engine has a single output file slot;
* waits until espeak-ng is idle before each synthesis, then for the driver's
  ``finished-utterance`` event (fired after the WAV is closed) and for idle again; then checks
  that the file is a WAV with audio frames;
* on failure retries after a short warm-up utterance, then in a fresh ``python -m
  adapters.tts.pyttsx3_engine`` worker process, and finally raises ``RetriesExhaustedError``
  (it has retried already: the task must not multiply the attempts);
* cleans the text first (``adapters.tts.speakable.clean_text``): a NUL would end espeak-ng's
  C string and silently cut the audio there;
* sends the driver's ``print("Audio saved to ...")`` to the log, never to stdout;
* splits long text into chunks of at most ``MAX_CHUNK_CHARS`` at sentence ends and joins
  the pieces, and writes every WAV under a temporary name before ``os.replace``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.errors import ConfigError, InputError, RetriesExhaustedError
from adapters.tts.base import SpeechResult
from adapters.tts.speakable import clean_text, require_speakable
from adapters.tts.wav import (
    concatenate_wavs,
    problem_with_wav,
    speech_result,
    temp_path_next_to,
    writable_wav_path,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: apt-get install espeak-ng"
LANGUAGES = ("en", "zh")
MAX_CHUNK_CHARS = 1000
ATTEMPT_TIMEOUT_S = 30.0  # one synthesis of <= MAX_CHUNK_CHARS takes well under a second
_IDLE_TIMEOUT_S = 5.0
_WARM_UP_TEXT = "Ready."
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_LANGUAGE_PREFIXES = {"en": ("en",), "zh": ("cmn", "yue", "zh", "hak")}
# A sentence: up to . ! ? ; followed by whitespace (so "3.14" stays whole), CJK end marks,
# a line break, or the end of the text.
_SENTENCE = re.compile(r"\S.*?(?:[.!?;](?=\s)|[。！？；]|\n|$)", re.S)
_SOFT_BREAKS = " ,，、"

_LOCK = threading.Lock()
_engine: _EspeakEngine | None = None


def _driver_print(*args: Any, **kwargs: Any) -> None:
    """Stand-in for ``print`` inside pyttsx3's espeak driver: stdout may carry JSON."""
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


class _EspeakEngine:
    """The process's pyttsx3 engine plus the completion signal pyttsx3 itself lacks."""

    def __init__(self) -> None:
        try:
            import pyttsx3
        except ImportError as exc:
            raise ConfigError(f"pyttsx3 is not installed: pip install pyttsx3 ({exc})") from exc
        try:
            import pyttsx3.drivers.espeak as espeak_driver
            from pyttsx3.drivers import _espeak

            # Module globals shadow builtins: this silences only the driver's prints.
            espeak_driver.print = _driver_print  # type: ignore[attr-defined]
            self._engine = pyttsx3.init("espeak")
            self._espeak = _espeak
            self.version = (_espeak.Info(None) or b"?").decode("utf-8", "replace")
        except (ImportError, OSError, RuntimeError) as exc:
            raise ConfigError(f"espeak-ng is not usable ({exc}); {INSTALL_HINT}") from exc
        self._finished = threading.Event()
        self._errors: list[str] = []
        self._engine.connect("finished-utterance", self._on_finished)
        self._engine.connect("error", self._on_error)
        # init() set rate and volume, which espeak-ng applies on its own thread: start the
        # driver loop only once it is idle (see save()), to apply what init() queued.
        self._wait_idle(_IDLE_TIMEOUT_S)
        self._engine.runAndWait()
        self.voices: list[tuple[str, str, tuple[str, ...]]] = [
            (str(v.id), str(v.name), tuple(str(lang) for lang in (v.languages or ())))
            for v in self._engine.getProperty("voices")
        ]

    def _on_finished(self, name: object = None, completed: bool = True) -> None:
        if not completed:
            self._errors.append("synthesis was cancelled")
        self._finished.set()

    def _on_error(self, name: object = None, exception: BaseException | None = None) -> None:
        self._errors.append(str(exception))

    def resolve_voice(self, wanted: str, language: str) -> str:
        """The id of the voice whose id, name or language code is ``wanted``."""
        key = wanted.strip().lower()
        for voice_id, name, _ in self.voices:
            if key in (voice_id.lower(), name.lower()):
                return voice_id
        for voice_id, _, languages in self.voices:
            if key in (lang.lower() for lang in languages):
                return voice_id
        prefixes = _LANGUAGE_PREFIXES.get(language, ())
        fitting = [
            voice_id
            for voice_id, _, languages in self.voices
            if any(lang.startswith(prefixes) for lang in languages[:1])
        ]
        examples = ", ".join(sorted(fitting or [v[0] for v in self.voices], key=len)[:6])
        raise ConfigError(
            f"espeak-ng has no voice {wanted!r} (NARRATE_TTS_VOICE_{language.upper()}); "
            f"{len(self.voices)} voices exist, e.g. {examples}. "
            "Give a voice id, name or language code (`espeak-ng --voices` lists them)."
        )

    def save(
        self, text: str, voice_id: str, rate_wpm: int, path: Path, timeout_s: float
    ) -> str | None:
        """Speak ``text`` into ``path`` and wait for it; ``None`` on success, else the problem."""
        if not self._wait_idle(min(timeout_s, _IDLE_TIMEOUT_S)):
            self.cancel()
            return "espeak-ng was still busy with an earlier text"
        self._finished.clear()
        self._errors.clear()
        self._engine.setProperty("voice", voice_id)
        self._engine.setProperty("rate", rate_wpm)
        if self._errors or self._engine.getProperty("voice") != voice_id:
            return f"espeak-ng did not switch to voice {voice_id!r} ({'; '.join(self._errors)})"
        # espeak-ng applies the rate on its thread and reports itself "playing" meanwhile; if
        # runAndWait() sees that, the driver sets a stop flag that cancels this text silently.
        if not self._wait_idle(_IDLE_TIMEOUT_S):
            return "espeak-ng did not apply the speech rate"
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()  # may return before the WAV is written: wait for the event
        if not self._finished.wait(timeout_s):
            self.cancel()
            return f"espeak-ng did not finish within {timeout_s:.0f} s"
        # The event fires inside espeak-ng's callback, which still touches the driver's state
        # (sample buffer, busy flag) after it: starting the next text before espeak-ng is idle
        # leaks audio into the next file and makes the driver cancel the next synthesis.
        if not self._wait_idle(_IDLE_TIMEOUT_S):
            log.warning("espeak-ng still busy %.0f s after finishing %s", _IDLE_TIMEOUT_S, path)
        if self._errors:
            return "espeak-ng reported: " + "; ".join(self._errors)
        return problem_with_wav(path)

    def _wait_idle(self, timeout_s: float) -> bool:
        """Wait until espeak-ng has no synthesis running; False if it is still busy."""
        deadline = time.monotonic() + timeout_s
        while self._espeak.IsPlaying():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def cancel(self) -> None:
        """Stop a synthesis still running, so it cannot write into the next call's file."""
        self._espeak.Cancel()  # not engine.stop(): that leaves a stale flag in the driver
        self._wait_idle(_IDLE_TIMEOUT_S)


def _get_engine() -> _EspeakEngine:
    """The process's engine, created on first use; call with ``_LOCK`` held."""
    global _engine
    if _engine is None:
        _engine = _EspeakEngine()
    return _engine


def split_text(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into chunks of at most ``max_chars`` characters, preferably at sentence ends."""
    pieces: list[str] = []
    for match in _SENTENCE.finditer(text):
        rest = match.group().strip()
        while len(rest) > max_chars:
            window = rest[:max_chars]
            cut = max(window.rfind(ch) for ch in _SOFT_BREAKS) + 1
            if cut < max_chars // 2:
                cut = max_chars
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            pieces.append(rest)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _save_in_process(
    engine: _EspeakEngine, text: str, voice_id: str, rate_wpm: int, path: Path, deadline: float
) -> list[str]:
    """Try the cached engine, then again after a warm-up utterance; the problems met, if any."""
    problems: list[str] = []
    for attempt in ("in process", "in process after a warm-up"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            problems.append(f"{attempt}: out of time")
            break
        if problems:  # a short utterance first: the engine's first long text is the risky one
            scratch = temp_path_next_to(path, "warmup")
            engine.save(
                _WARM_UP_TEXT, voice_id, rate_wpm, scratch, min(remaining, ATTEMPT_TIMEOUT_S)
            )
            _discard(scratch)
            remaining = deadline - time.monotonic()
        problem = engine.save(
            text, voice_id, rate_wpm, path, max(0.1, min(remaining, ATTEMPT_TIMEOUT_S))
        )
        if problem is None:
            return []
        log.warning("espeak-ng %s wrote no usable WAV to %s: %s", attempt, path, problem)
        problems.append(f"{attempt}: {problem}")
        _discard(path)
    return problems


def _save_in_subprocess(
    text: str, voice_id: str, rate_wpm: int, path: Path, timeout_s: float
) -> str | None:
    """Synthesise in a fresh worker process; ``None`` on success, else the problem."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    command = [
        sys.executable, "-m", "adapters.tts.pyttsx3_engine",
        "--voice", voice_id, "--rate", str(rate_wpm), "--out", str(path),
        "--timeout", str(timeout_s),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, input=text.encode("utf-8"), capture_output=True, timeout=timeout_s, env=env
        )
    except subprocess.TimeoutExpired:
        return f"worker process did not finish within {timeout_s:.0f} s"
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        return f"worker process exited with {done.returncode}: {' | '.join(detail)}"
    return problem_with_wav(path)


def _synthesize_chunk(
    engine: _EspeakEngine, text: str, voice_id: str, rate_wpm: int, path: Path, deadline: float
) -> None:
    """Write ``text`` to ``path`` by any means that works, or raise ``RetriesExhaustedError``."""
    problems = _save_in_process(engine, text, voice_id, rate_wpm, path, deadline)
    if not problems:
        return
    remaining = deadline - time.monotonic()
    if remaining > 0:
        problem = _save_in_subprocess(text, voice_id, rate_wpm, path, remaining)
        if problem is None:
            log.warning("espeak-ng worker process recovered %s", path)
            return
        problems.append(f"fresh process: {problem}")
        _discard(path)
    raise RetriesExhaustedError(
        f"espeak-ng wrote no usable WAV for {path} after retrying: " + "; ".join(problems)
    )


class Pyttsx3Synthesizer:
    """``SpeechSynthesizer`` on pyttsx3/espeak-ng: English and Mandarin voices, WAV output."""

    def __init__(
        self,
        *,
        rate_wpm: int = 170,
        voice_en: str = "gmw/en-us",
        voice_zh: str = "sit/cmn-latn-pinyin",
        timeout_s: float = 120,
    ) -> None:
        """Remember the settings; the engine starts on first use (or ``warm_up()``)."""
        if not 20 <= rate_wpm <= 1000:
            raise ConfigError(f"speech rate must be 20-1000 words per minute, not {rate_wpm}")
        if timeout_s <= 0:
            raise ConfigError(f"TTS timeout must be positive, not {timeout_s}")
        self.rate_wpm = rate_wpm
        self.voice_en = voice_en
        self.voice_zh = voice_zh
        self.timeout_s = float(timeout_s)

    def _wanted_voice(self, language: str) -> str:
        if language not in LANGUAGES:
            raise InputError(None, f"speech language must be 'en' or 'zh', not {language!r}")
        return self.voice_en if language == "en" else self.voice_zh

    def warm_up(self) -> None:
        """Start the engine and check both configured voices (``ConfigError`` if one is wrong)."""
        with _LOCK:
            engine = _get_engine()
            for language in LANGUAGES:
                engine.resolve_voice(self._wanted_voice(language), language)

    def voice_for(self, language: str) -> str:
        """The espeak-ng voice id used for ``language`` ("en" or "zh")."""
        wanted = self._wanted_voice(language)
        with _LOCK:
            return _get_engine().resolve_voice(wanted, language)

    @property
    def engine_name(self) -> str:
        """``"pyttsx3/espeak-ng <version>"``; starts the engine if needed."""
        with _LOCK:
            return f"pyttsx3/espeak-ng {_get_engine().version}"

    def synthesize(self, text: str, out_path: Path, language: str = "en") -> SpeechResult:
        """Write ``text`` spoken in ``language`` ("en" or "zh") to ``out_path`` as WAV."""
        out_path = Path(out_path)
        wanted = self._wanted_voice(language)
        text = require_speakable(clean_text(text) if isinstance(text, str) else "")
        writable_wav_path(out_path)

        deadline = time.monotonic() + self.timeout_s
        parts: list[Path] = []
        try:
            with _LOCK:
                engine = _get_engine()
                voice_id = engine.resolve_voice(wanted, language)
                version = engine.version
                for index, chunk in enumerate(split_text(text)):
                    parts.append(temp_path_next_to(out_path, f"part{index}"))
                    _synthesize_chunk(engine, chunk, voice_id, self.rate_wpm, parts[-1], deadline)
            if len(parts) == 1:
                os.replace(parts[0], out_path)
            else:
                concatenate_wavs(parts, out_path)
        finally:
            for part in parts:
                _discard(part)
        return speech_result(
            out_path,
            voice=voice_id,
            language=language,
            engine=f"pyttsx3/espeak-ng {version}",
            text=text,
        )


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """Worker process: read UTF-8 text on stdin, write one WAV; exit 0 only if it is valid."""
    parser = argparse.ArgumentParser(description=_worker_main.__doc__)
    parser.add_argument("--voice", required=True, help="espeak-ng voice id, e.g. gmw/en-us")
    parser.add_argument("--rate", type=int, default=170, help="words per minute")
    parser.add_argument("--out", type=Path, required=True, help="WAV file to write")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds")
    args = parser.parse_args(argv)
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        engine = _get_engine()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    problems = _save_in_process(engine, text, args.voice, args.rate, args.out, deadline)
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
