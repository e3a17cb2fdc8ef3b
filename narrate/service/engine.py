"""Running a job on the pipeline: the direct engine, or one Prefect flow run per request.

The direct engine calls ``describe_one`` / ``answer_one`` with the plain step functions (as
``narrate describe --engine direct`` does), with OCR and features waiting for a free core as
in a batch. The Prefect engine calls the ``image-to-speech`` and ``voice-qa`` flows, so each
request is a flow run in the Prefect UI. Both share the process's LLM describer, hence its
rate limit, breakers and cache.

Errors become ``ApiError`` with the CLI's one-line reasons: bad input 422, a backend that
failed 502, a server set-up problem 500.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from adapters.errors import AdapterError, ConfigError, InputError, NarrateError
from narrate.config.settings import Settings
from narrate.ops.prefect_server import EngineName
from narrate.pipeline.results import DescribeResult
from narrate.service.errors import ApiError
from narrate.service.jobs import Job
from narrate.service.uploads import StoredUpload

# OCR and features are CPU-bound: one per core at a time, however many jobs are in flight
# (most of them wait for the LLM) - the limit a batch run keeps too.


class PipelineRunner:
    """Does a job's work with the chosen engine (the ``JobQueue``'s work function)."""

    def __init__(self, settings: Settings, engine: EngineName = "direct") -> None:
        self.settings = settings
        self.engine = engine
        self.steps: Any = None
        if engine == "direct":
            from narrate.pipeline.batch import cpu_slots
            from narrate.pipeline.sequence import plain_steps

            # OCR and features share the process's slots with any batch
            self.steps = dataclasses.replace(plain_steps(settings.llm.cache), cpu_slot=cpu_slots())

    def __call__(self, job: Job) -> None:
        """Run ``job``; fills ``job.result`` and ``job.audio_path``.

        Raises:
            ApiError: with the HTTP status and one-line reason of any failure.
        """
        image: StoredUpload = job.inputs["image"]
        audio: StoredUpload | None = job.inputs.get("audio")
        names = {str(image.path): image.name}
        if audio is not None:
            names[str(audio.path)] = audio.name
        try:
            if job.kind == "describe":
                result = self._describe(job, image)
            else:
                result = self._ask(job, image, audio)
        except InputError as exc:
            raise ApiError(422, _client_reason(exc, names)) from None
        except ConfigError as exc:
            raise ApiError(500, f"the server is not set up for this: {exc}") from None
        except AdapterError as exc:
            raise ApiError(502, f"a backend failed: {exc}") from None
        except NarrateError as exc:
            raise ApiError(500, str(exc)) from None
        job.audio_path = Path(result.audio_path)
        job.result = public_result(result, job, image, audio)

    def _describe(self, job: Job, image: StoredUpload) -> DescribeResult:
        lang = job.inputs.get("lang", "auto")
        if self.engine == "prefect":
            from flows.image_to_speech import image_to_speech

            return image_to_speech(image.path, out_dir=job.directory, lang=lang, stem="result")
        from narrate.pipeline.sequence import describe_one

        return describe_one(
            image.path, out_dir=job.directory, lang=lang, settings=self.settings,
            steps=self.steps, stem="result",
        )  # fmt: skip

    def _ask(self, job: Job, image: StoredUpload, audio: StoredUpload | None) -> DescribeResult:
        lang = job.inputs.get("lang", "auto")
        question = job.inputs.get("question")
        audio_path = audio.path if audio is not None else None
        if self.engine == "prefect":
            from flows.voice_qa import voice_qa

            return voice_qa(
                image.path, question_audio=audio_path, question_text=question,
                out_dir=job.directory, lang=lang,
            )  # fmt: skip
        from narrate.pipeline.sequence import answer_one

        return answer_one(
            image.path, question_text=question, question_audio=audio_path,
            out_dir=job.directory, lang=lang, settings=self.settings, steps=self.steps,
        )  # fmt: skip


def _client_reason(exc: InputError, names: dict[str, str]) -> str:
    """The error's one line with the client's file name in place of the server's path."""
    if exc.path is None:
        return exc.reason
    return f"{names.get(exc.path, Path(exc.path).name)}: {exc.reason}"


def audio_url(job: Job) -> str:
    """Where the caller fetches the job's speech: ``/v1/audio/<job id>.wav``."""
    return f"/v1/audio/{job.id}.wav"


def public_result(
    result: DescribeResult, job: Job, image: StoredUpload, audio: StoredUpload | None
) -> dict[str, Any]:
    """The result as ``narrate describe --json`` prints it, plus ``id`` and ``audio_url``.

    Server paths never leave: ``image_path`` and ``question_audio`` are the names the client
    gave its files, ``audio_path`` is the ``audio_url``.

    Args:
        result: what the pipeline returned.
        job: the job it was for.
        image: the uploaded image.
        audio: the uploaded question, if any.

    Returns:
        The JSON-ready dict.
    """
    data = {"ok": True, **result.to_dict()}
    data["image_path"] = image.name
    data["audio_path"] = audio_url(job)
    if "question_audio" in data:
        data["question_audio"] = audio.name if audio is not None else None
    data["id"] = job.id
    data["audio_url"] = audio_url(job)
    return data
