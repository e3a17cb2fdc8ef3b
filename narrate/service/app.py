"""The FastAPI application of ``narrate serve``.

Routes (every ``/v1/*`` route needs ``Authorization: Bearer <JWT>`` when tokens are on)::

    POST /v1/describe          image [+ lang]                  -> 200 the describe result
    POST /v1/ask               image + (question | audio) [+ lang] -> 200 the answer
    POST /v1/jobs              either of the above, accepted at once -> 202 {id, status_url}
    GET  /v1/jobs/{id}         queued | running | done (+ result) | failed (+ error)
    GET  /v1/audio/{id}.wav    the spoken result, to the caller that asked for it only
    GET  /healthz              liveness (no token)
    GET  /metrics              narrate's Prometheus metrics
    GET  /docs, /openapi.json  the OpenAPI page (Swagger UI served from the package)
    GET  /                     the web page (static HTML/JS/CSS shipped in the package)

Every error is JSON ``{"detail": "<one line a person can act on>"}``; no traceback leaves
the server (unexpected errors are logged here and answered 500 with no internals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from narrate import __version__
from narrate.config.settings import Settings, load_settings
from narrate.ops.audit import open_audit_log
from narrate.service import telemetry
from narrate.service.access import AddressPolicy, AuthError, Caller, TokenVerifier
from narrate.service.engine import EngineName, PipelineRunner
from narrate.service.errors import ApiError
from narrate.service.gate import Gate
from narrate.service.jobs import Job, JobKind, JobQueue, QueueFull, Work
from narrate.service.uploads import check_audio, check_image, store

log = logging.getLogger("narrate.service")

STATIC_DIR = Path(__file__).parent / "static"
MAX_QUESTION_CHARS = 1000
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

Lang = Literal["auto", "en", "zh"]


_bearer = HTTPBearer(auto_error=False, description="a JWT; see NARRATE_API_JWT_* on the server")


def current_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller the gate verified (the bearer dependency documents the scheme in /docs)."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):  # the gate always sets it on /v1/*; never trust absence
        raise AuthError(401, "this API needs an access token: send 'Authorization: Bearer <JWT>'")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
ImageField = Annotated[UploadFile, File(description="the photo or screenshot (PNG, JPEG, ...)")]
AudioField = Annotated[
    UploadFile | None, File(description="the question, recorded (WAV, FLAC, OGG, MP3)")
]
QuestionField = Annotated[str | None, Form(description="the question, typed")]
LangField = Annotated[Lang, Form(description="language of the text in the image")]


@dataclass
class DescribeForm:
    """The form of ``POST /v1/describe``: an image and the language of its text."""

    image: ImageField
    lang: LangField = "auto"


@dataclass
class AskForm:
    """The form of ``POST /v1/ask`` and ``/v1/jobs``: an image and a question, typed or recorded.

    On ``/v1/jobs`` no question means describe the image.
    """

    image: ImageField
    question: QuestionField = None
    audio: AudioField = None
    lang: LangField = "auto"

    @property
    def kind(self) -> JobKind:
        """``ask`` when a question came (typed or recorded), else ``describe``."""
        return "ask" if (self.question or self.audio is not None) else "describe"


def create_app(
    settings: Settings | None = None,
    *,
    engine: EngineName = "direct",
    work: Work | None = None,
) -> FastAPI:
    """Build the application.

    Args:
        settings: narrate's settings (default: read from the environment).
        engine: ``direct`` (plain steps in this process) or ``prefect`` (a flow run each).
        work: the job function (default: the pipeline on ``engine``); for tests of faults.

    Returns:
        The ASGI application, with the gate (allowlist, token, size, queue, audit) outside it.

    Raises:
        ConfigError: an ``NARRATE_API_*`` setting is unusable (bad CIDR, short secret, ...).
    """
    from fastapi_offline import FastAPIOffline

    settings = settings or load_settings()
    api = settings.api
    verifier = TokenVerifier.from_settings(api)
    policy = AddressPolicy.from_settings(api)
    queue = JobQueue(
        work or PipelineRunner(settings, engine),
        concurrency=api.concurrency,
        max_queue=api.max_queue,
        retention_s=api.retention_s,
        work_dir=api.work_dir,
    )
    checks = anyio.CapacityLimiter(os.cpu_count() or 1)  # decoding uploads is CPU work
    telemetry.watch_queue(queue.depth)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(queue, min(60.0, api.retention_s / 2)))
        try:
            yield
        finally:
            sweeper.cancel()
            await anyio.to_thread.run_sync(queue.close)  # every admitted job completes
            queue.sweep(math.inf)  # results are unreachable once the server is gone

    app = FastAPIOffline(
        title="narrate",
        version=__version__,
        description="Images to speech: upload a photo, get its description and a WAV of it.",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.settings = settings
    app.state.engine = engine
    _add_error_handlers(app)

    async def admit(
        request: Request, caller: Caller, kind: JobKind, form: DescribeForm | AskForm
    ) -> Job:
        """Check and store the uploads and queue the job (the question only when asking)."""
        caller.require(kind)
        image = form.image
        asked = form if kind == "ask" and isinstance(form, AskForm) else None
        question = _check_question(asked.question, asked.audio) if asked else None
        audio = asked.audio if asked else None
        slot = queue.reserve()
        job: Job | None = None
        try:
            job = queue.new_job(caller.owner, kind)
            async with checks:
                stored = await anyio.to_thread.run_sync(
                    store, image.file, job.directory, "image", image.filename
                )
                await anyio.to_thread.run_sync(
                    lambda: check_image(
                        stored, max_pixels=settings.max_image_pixels,
                        max_bytes=api.max_upload_bytes,
                    )
                )  # fmt: skip
                job.inputs = {"image": stored, "lang": form.lang, "question": question}
                if audio is not None:
                    recording = await anyio.to_thread.run_sync(
                        store, audio.file, job.directory, "question", audio.filename
                    )
                    await anyio.to_thread.run_sync(
                        lambda: check_audio(recording, max_bytes=api.max_upload_bytes)
                    )
                    job.inputs["audio"] = recording
        except BaseException:
            slot.release()
            if job is not None:
                queue.discard(job)
            raise
        request.state.job_id = job.id
        return slot.start(job)

    async def finished(job: Job) -> dict[str, Any]:
        await asyncio.wrap_future(job.future)
        if job.status != "done" or job.result is None:
            raise ApiError(job.error_status or 500, job.error_detail or "the job failed")
        return job.result

    @app.post("/v1/describe", tags=["narrate"], summary="Describe an image aloud")
    async def describe(
        request: Request, caller: CallerDep, form: Annotated[DescribeForm, Depends()]
    ) -> dict[str, Any]:
        """OCR, features, description and speech for one image; waits for the result."""
        return await finished(await admit(request, caller, "describe", form))

    @app.post("/v1/ask", tags=["narrate"], summary="Answer a question about an image aloud")
    async def ask(
        request: Request, caller: CallerDep, form: Annotated[AskForm, Depends()]
    ) -> dict[str, Any]:
        """Answer a typed (``question``) or spoken (``audio``) question; waits for the answer."""
        return await finished(await admit(request, caller, "ask", form))

    @app.post("/v1/jobs", status_code=202, tags=["jobs"], summary="Accept work, poll for it")
    async def submit_job(
        request: Request, caller: CallerDep, form: Annotated[AskForm, Depends()]
    ) -> JSONResponse:
        """Describe (no question) or ask (``question`` or ``audio``), answered 202 at once."""
        job = await admit(request, caller, form.kind, form)
        url = f"/v1/jobs/{job.id}"
        body = {"id": job.id, "kind": job.kind, "status": job.status, "status_url": url}
        return JSONResponse(body, status_code=202, headers={"Location": url})

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], summary="A job's status and result")
    async def get_job(request: Request, job_id: str, caller: CallerDep) -> dict[str, Any]:
        """``queued``, ``running``, ``done`` with ``result``, or ``failed`` with ``error``."""
        job = queue.get(job_id, caller.owner)
        if job is None:
            raise ApiError(404, f"no job {job_id} of yours (results are kept {_kept(api)})")
        request.state.job_id = job.id
        return job.public()

    @app.get(
        "/v1/audio/{job_id}.wav",
        tags=["narrate"],
        summary="The spoken result",
        response_class=FileResponse,
        responses={200: {"content": {"audio/wav": {}}}},
    )
    async def get_audio(request: Request, job_id: str, caller: CallerDep) -> FileResponse:
        """The WAV of a finished job, to the caller that made it only."""
        job = queue.get(job_id, caller.owner)
        if job is not None and job.status in ("queued", "running"):
            raise ApiError(
                409, f"the audio is not ready yet ({job.status}): poll /v1/jobs/{job.id}"
            )
        if job is None or job.audio_path is None or not job.audio_path.is_file():
            raise ApiError(404, f"no audio {job_id} of yours (results are kept {_kept(api)})")
        request.state.job_id = job.id
        return FileResponse(
            job.audio_path, media_type="audio/wav", filename=f"narrate-{job_id}.wav",
            headers={"Cache-Control": "private, no-store"},
        )  # fmt: skip

    @app.get("/healthz", tags=["service"], summary="Liveness")
    async def healthz() -> dict[str, Any]:
        """``ok`` while the server runs; says whether tokens are needed."""
        return {"status": "ok", "version": __version__, "auth": verifier is not None}

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        """Narrate's metrics in the Prometheus text format."""
        from narrate.ops import metrics

        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY}
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    audit = open_audit_log(settings.llm.audit)

    def queue_full() -> int | None:
        return queue.retry_after_s() if queue.full() else None

    app.add_middleware(
        Gate,
        policy=policy,
        verifier=verifier,
        max_body_bytes=api.max_upload_bytes,
        audit=audit,
        queue_full=queue_full,
    )
    return app


def _kept(api: Any) -> str:
    seconds = api.retention_s
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def _check_question(question: str | None, audio: UploadFile | None) -> str | None:
    """Exactly one question, as text or as a recording (the pipeline's own wording)."""
    if (question is None) == (audio is None):
        raise ApiError(422, "give exactly one question: as text or as an audio file")
    if question is not None:
        question = question.strip()
        if not question:
            raise ApiError(422, "the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ApiError(422, f"the question is over {MAX_QUESTION_CHARS} characters")
    return question


async def _sweep_forever(queue: JobQueue, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        removed = await anyio.to_thread.run_sync(queue.sweep)
        if removed:
            log.info("deleted %d expired job(s) and their files", removed)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"detail": one line}``; never a traceback."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(AuthError)
    async def auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        return _error(exc.status, exc.detail, {"WWW-Authenticate": exc.www_authenticate})

    @app.exception_handler(QueueFull)
    async def queue_full(_request: Request, exc: QueueFull) -> JSONResponse:
        detail = f"the server is busy (queue full): try again in {exc.retry_after_s} s"
        return _error(503, detail, {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_line(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error; the server log has the details")


def _validation_line(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one line: ``image: a file is required; lang: ...``."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "request"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "missing":
            message = "this form field is required"
        parts.append(f"{field}: {message}")
    return "; ".join(parts) or "the request is not valid"
