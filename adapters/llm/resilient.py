"""``ResilientChatClient``: the Qwen3 chat client that survives production faults.

It wraps the one-attempt ``OpenAICompatClient`` and, per call::

    for model in [model, *fallback_models]:             404 model_not_found / retries used up
        until the answer is complete:                   -> next model (text so far is kept)
            endpoint = first allowed by its breaker     503 / 502 / 504 / connection failure
            token bucket (endpoints, model)             -> next endpoint at once, breaker++
            one attempt (timeout <= time left)          429 / 408 / 409 / 500 / ... -> back off
            finish_reason "length" -> continue          full jitter, >= Retry-After, capped

- **Retries**: at most ``max_retries`` per model; the wait before a retry is
  ``uniform(0, min(retry_cap, retry_base * 2**n))`` and never less than the server's
  ``Retry-After`` / ``retry-after-ms``. Out-of-credit 429s, 401/403 and other 4xx are not
  retried: they raise ``ResilientPermanentError`` with the server's actionable message.
- **Deadline**: ``deadline`` seconds bound the whole call, waits included: a wait that would
  pass it is not started, and each request's timeout shrinks to the time left. Running out
  raises ``LLMExhaustedError`` (a ``TransientError``).
- **Failover**: endpoints are tried in order; each has a process-wide ``CircuitBreaker``
  (``adapters.llm.breaker``). When every breaker is open, the endpoint that failed longest
  ago is tried anyway, so a call never fails without sending anything.
- **Rate limit**: one ``TokenBucket`` per process and (endpoints, model)
  (``adapters.llm.ratelimit``), shared by all threads and event loops.
- **Streaming and truncation**: text already delivered to ``on_delta`` is never lost or sent
  twice. A stream cut mid-way, or an answer cut by ``finish_reason == "length"`` (up to
  ``max_continuations`` times), is continued with DashScope's partial mode: the conversation
  is resent with the text so far as a final ``{"role": "assistant", "partial": true}``
  message, and only the new text is appended (and delivered).
- **Accounting**: the ``ChatResult`` carries total latency, ttft, tokens summed over every
  answered request, attempts, the answering endpoint and model, ``endpoints_tried`` and
  ``fallback_from``.

Hooks (the single places where audit logging, metrics and a response cache plug in):
``client.on_attempt`` is a list of callables, each called with an ``AttemptRecord`` after
every HTTP attempt; ``cache=`` takes any object with ``get(request, model)`` and
``put(request, result)`` (see ``ResponseCache``). Retries, failovers and fallbacks each log
one line on the ``narrate.llm`` logger; the API key never appears in a message.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from pydantic import SecretStr

from adapters.errors import PermanentError, RetriesExhaustedError, TransientError
from adapters.llm.base import ChatMessage, ChatRequest, ChatResult, Usage
from adapters.llm.breaker import CircuitBreaker, shared_breaker
from adapters.llm.openai_compat import ChatPermanentError, OpenAICompatClient
from adapters.llm.ratelimit import TokenBucket, shared_bucket

log = logging.getLogger("narrate.llm")

OFFLINE = "offline"  # a fallback-model name handled by the describer level, not here
FAILOVER_STATUS = frozenset({502, 503, 504})
MODEL_ERROR_CODES = frozenset({"model_not_found", "model_not_supported", "modelnotfound"})
MIN_ATTEMPT_SECONDS = 0.01  # less time than this left: do not start another request

_LAST_RESULT: contextvars.ContextVar[ChatResult | None] = contextvars.ContextVar(
    "narrate_llm_last_result", default=None
)


@dataclass(frozen=True)
class AttemptRecord:
    """One HTTP attempt, as handed to every ``on_attempt`` hook."""

    time: float  # time.time() when the attempt started
    call_id: str  # the same for every attempt of one ``complete``/``stream`` call
    attempt: int  # 1-based number within the call
    endpoint: str
    model: str
    parameters: dict[str, Any]  # temperature, top_p, max_tokens, stream, partial_chars
    outcome: Literal["ok", "transient", "permanent"]
    latency_s: float
    status_code: int | None = None  # HTTP status of an error reply (None: transport failure)
    error_code: str | None = None
    error: str | None = None
    request_id: str | None = None
    ttft_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    delivered_chars: int = 0  # text this attempt delivered (streams cut mid-way too)
    messages: tuple[dict[str, Any], ...] = ()  # the messages as sent (after anonymisation)


class ResponseCache(Protocol):
    """What ``ResilientChatClient(cache=...)`` needs from a response cache."""

    def get(self, request: ChatRequest, model: str) -> ChatResult | None:
        """A stored answer for ``request`` sent to ``model``, or None."""
        ...

    def put(self, request: ChatRequest, model: str, result: ChatResult) -> None:
        """Store a complete answer to ``request`` sent to ``model`` (whoever answered it)."""
        ...


class LLMExhaustedError(RetriesExhaustedError):
    """No answer within the retries and the deadline, on every endpoint and model."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        models_tried: tuple[str, ...],
        endpoints_tried: tuple[str, ...],
        partial_text: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.attempts = attempts
        self.models_tried = models_tried
        self.endpoints_tried = endpoints_tried
        self.partial_text = partial_text


class ResilientPermanentError(ChatPermanentError):
    """A permanent failure (out of credit, bad key, bad request, no model left to fall back to)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        error_code: str | None,
        endpoint: str | None,
        attempts: int,
        models_tried: tuple[str, ...],
        endpoints_tried: tuple[str, ...],
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code, endpoint=endpoint)
        self.attempts = attempts
        self.models_tried = models_tried
        self.endpoints_tried = endpoints_tried


def last_result() -> ChatResult | None:
    """The ``ChatResult`` of the latest successful call in this thread / asyncio context."""
    return _LAST_RESULT.get()


def forget_last_result() -> None:
    """Clear ``last_result()`` for this thread / asyncio context (before a new call)."""
    _LAST_RESULT.set(None)


def split_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a, b,,c"`` (or an iterable of such strings) as ``("a", "b", "c")``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


class _NextModel(Exception):
    """Internal: this model cannot answer; carry on with the next fallback model."""

    def __init__(self, reason: str, error: Exception) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass
class _Call:
    """Mutable state of one call, across attempts, endpoints and models."""

    call_id: str
    started: float
    deadline_at: float
    on_delta: Callable[[str], None] | None
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    endpoints: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)
    continuations: int = 0
    ttft: float | None = None
    last_error: Exception | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ResilientChatClient:
    """``ChatClient`` with rate limiting, retries, region failover, model fallback, continuation."""

    def __init__(
        self,
        *,
        endpoints: Sequence[str],
        model: str = "qwen3-max",
        fallback_models: Sequence[str] = (),
        api_key: SecretStr | str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        deadline: float = 120.0,
        qps: float = 5.0,
        burst: int = 5,
        retry_base: float = 0.5,
        retry_cap: float = 8.0,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 30.0,
        max_continuations: int = 2,
        client: httpx.Client | None = None,
        cache: ResponseCache | None = None,
        on_attempt: Iterable[Callable[[AttemptRecord], None]] = (),
        in_flight: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = tuple(dict.fromkeys(e.rstrip("/") for e in endpoints if e.strip()))
        if not self.endpoints:
            raise ValueError("ResilientChatClient needs at least one endpoint")
        self.model = model
        self._in_flight = in_flight  # e.g. a metrics gauge held while a request is open
        self.fallback_models = tuple(m for m in split_list(fallback_models) if m != OFFLINE)
        if isinstance(api_key, str):
            api_key = SecretStr(api_key)
        self._api_key = api_key if api_key and api_key.get_secret_value() else None
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.deadline = float(deadline)
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self.retry_base = float(retry_base)
        self.retry_cap = float(retry_cap)
        self.breaker_threshold = int(breaker_threshold)
        self.breaker_cooldown = float(breaker_cooldown)
        self.max_continuations = max(0, int(max_continuations))
        self.cache = cache
        self.on_attempt: list[Callable[[AttemptRecord], None]] = list(on_attempt)
        self._sleep = sleep
        self._clock = clock
        self._random = (rng or random.Random()).random
        self._owns_http = client is None
        self._http = client if client is not None else httpx.Client(timeout=self.timeout)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"{type(self).__name__}(endpoints={list(self.endpoints)!r}, model={self.model!r}, "
            f"fallback_models={list(self.fallback_models)!r}, api_key=<{key}>)"
        )

    def close(self) -> None:
        """Close the shared HTTP connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ResilientChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- shared process-wide state --------------------------------------------------------

    def breaker(self, endpoint: str) -> CircuitBreaker:
        """The process-wide circuit breaker of ``endpoint``."""
        return shared_breaker(endpoint, self.breaker_threshold, self.breaker_cooldown)

    def bucket(self, model: str) -> TokenBucket:
        """The process-wide token bucket for this endpoint list and ``model``."""
        return shared_bucket((self.endpoints, model), self.qps, self.burst)

    # -- public API ---------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResult:
        """Answer ``request`` (streamed internally when ``request.stream``), surviving faults."""
        return self._call(request, None)

    def stream(
        self, request: ChatRequest, on_delta: Callable[[str], None] | None = None
    ) -> ChatResult:
        """Stream ``request``; ``on_delta`` gets every new piece of text exactly once."""
        return self._call(dataclasses.replace(request, stream=True), on_delta)

    # -- the call -----------------------------------------------------------------------

    def _call(self, request: ChatRequest, on_delta: Callable[[str], None] | None) -> ChatResult:
        first = request.model or self.model
        models = [first, *(m for m in self.fallback_models if m != first)]
        if self.cache is not None:
            cached = self.cache.get(request, first)
            if cached is not None:
                if on_delta is not None and cached.text:
                    on_delta(cached.text)
                _LAST_RESULT.set(cached)
                return cached
        started = self._clock()
        call = _Call(uuid.uuid4().hex[:16], started, started + self.deadline, on_delta)
        for index, model in enumerate(models):
            call.models.append(model)
            try:
                result = self._call_model(request, model, call)
            except _NextModel as nxt:
                call.failed_models.append(model)
                call.last_error = nxt.error
                if index + 1 < len(models):
                    log.warning(
                        "fallback: model %s failed (%s); trying model %s [call %s]",
                        model,
                        nxt.reason,
                        models[index + 1],
                        call.call_id,
                    )
                    continue
                raise self._final_error(call, nxt.error) from nxt.error
            _LAST_RESULT.set(result)
            if self.cache is not None and not result.truncated:
                self.cache.put(request, first, result)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _call_model(self, request: ChatRequest, model: str, call: _Call) -> ChatResult:
        """Answer with ``model``: retries, failover, continuation; ``_NextModel`` to give up."""
        failures = 0
        backoffs = 0
        # Endpoints that failed with a failover error in this round; the round ends (and they
        # are tried again) only when every endpoint has failed.
        round_failed: set[str] = set()
        while True:
            remaining = call.deadline_at - self._clock()
            if remaining < MIN_ATTEMPT_SECONDS:
                raise self._deadline_error(call, model)
            endpoint = self._pick_endpoint(round_failed)
            if endpoint is None:  # every endpoint failed in this round: back off, start over
                self._back_off(call, model, backoffs, None, "every endpoint failed")
                backoffs += 1
                round_failed.clear()
                continue
            if not self.bucket(model).acquire(max_wait=remaining):
                self.breaker(endpoint).release()  # give back a probe slot we may hold
                raise self._deadline_error(call, model, "the rate limit leaves no time")
            try:
                segment = self._attempt(request, model, endpoint, call)
            except ChatPermanentError as exc:
                self.breaker(endpoint).record_success()  # it answered: the region is up
                if _is_model_error(exc):
                    raise _NextModel(f"HTTP {exc.status_code} {exc.error_code}", exc) from exc
                raise self._final_error(call, exc) from exc
            except TransientError as exc:
                call.last_error = exc
                failures += 1
                failover = _is_failover(exc)
                breaker = self.breaker(endpoint)
                if failover:
                    breaker.record_failure()
                    round_failed.add(endpoint)
                else:
                    breaker.record_success()
                if failures > self.max_retries:
                    raise _NextModel(f"{failures} failed attempts", exc) from exc
                if failover:
                    following = self._pick_endpoint(round_failed, claim=False)
                    if following is not None:
                        log.warning(
                            "failover: %s failed (%s); trying %s [call %s, attempt %d]",
                            endpoint,
                            _short(exc),
                            following,
                            call.call_id,
                            call.attempts,
                        )
                        continue
                retry_after = getattr(exc, "retry_after", None)
                self._back_off(call, model, backoffs, retry_after, _short(exc))
                backoffs += 1
                if failover:  # the last endpoint standing failed too: start a new round
                    round_failed.clear()
                continue
            except BaseException:
                self.breaker(endpoint).release()
                raise
            self.breaker(endpoint).record_success()
            call.usage = call.usage + segment.usage
            if segment.finish_reason == "length" and call.continuations < self.max_continuations:
                call.continuations += 1
                log.info(
                    "continuation %d/%d: %s (model %s) hit the token limit after %d chars "
                    "[call %s]",
                    call.continuations,
                    self.max_continuations,
                    endpoint,
                    model,
                    len(call.text),
                    call.call_id,
                )
                continue
            return ChatResult(
                text=call.text,
                finish_reason=segment.finish_reason,
                usage=call.usage,
                latency_s=self._clock() - call.started,
                model=segment.model,
                endpoint=endpoint,
                attempts=call.attempts,
                truncated=segment.finish_reason == "length",
                ttft_s=call.ttft,
                request_id=segment.request_id,
                endpoints_tried=tuple(call.endpoints),
                fallback_from=tuple(call.failed_models),
                continuations=call.continuations,
            )

    def _pick_endpoint(self, round_failed: set[str], *, claim: bool = True) -> str | None:
        """The first endpoint whose breaker allows a request.

        If every breaker is open, the one that failed longest ago; None when every endpoint
        already failed in this round.
        """
        candidates = [e for e in self.endpoints if e not in round_failed]
        if not candidates:
            return None
        for endpoint in candidates:
            breaker = self.breaker(endpoint)
            if breaker.allow() if claim else breaker.state != "open":
                return endpoint
        return min(candidates, key=lambda e: self.breaker(e).last_failure_at)

    def _attempt(self, request: ChatRequest, model: str, endpoint: str, call: _Call) -> ChatResult:
        """Send one request (continuing ``call.text`` in partial mode) and report it to hooks."""
        call.attempts += 1
        if endpoint not in call.endpoints:
            call.endpoints.append(endpoint)
        prefix = call.text
        messages = request.messages
        if prefix:
            messages = (*messages, ChatMessage("assistant", prefix, partial=True))
        segment_request = dataclasses.replace(request, messages=messages, model=model)
        remaining = call.deadline_at - self._clock()
        client = OpenAICompatClient(
            base_url=endpoint,
            model=model,
            api_key=self._api_key,
            timeout=max(MIN_ATTEMPT_SECONDS, min(self.timeout, remaining)),
            client=self._http,
        )
        delivered = 0

        def deliver(piece: str) -> None:
            nonlocal delivered
            if call.ttft is None:
                call.ttft = self._clock() - call.started
            call.parts.append(piece)
            delivered += len(piece)
            if call.on_delta is not None:
                call.on_delta(piece)

        sent = tuple(m.to_dict() for m in segment_request.messages)
        wall, started = time.time(), self._clock()
        parameters = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
            "partial_chars": len(prefix),
        }
        common: dict[str, Any] = {
            "time": wall,
            "call_id": call.call_id,
            "attempt": call.attempts,
            "endpoint": endpoint,
            "model": model,
            "parameters": parameters,
            "messages": sent,
        }
        try:
            with self._in_flight():
                if request.stream:
                    segment = client.stream(segment_request, on_delta=deliver)
                else:
                    segment = client.complete(segment_request)
                    call.parts.append(segment.text)
                    delivered = len(segment.text)
        except (TransientError, PermanentError) as exc:
            self._report(
                AttemptRecord(
                    **common,
                    outcome="transient" if isinstance(exc, TransientError) else "permanent",
                    latency_s=self._clock() - started,
                    status_code=getattr(exc, "status_code", None),
                    error_code=getattr(exc, "error_code", None),
                    error=str(exc),
                    delivered_chars=delivered,
                )
            )
            raise
        self._report(
            AttemptRecord(
                **common,
                outcome="ok",
                latency_s=segment.latency_s,
                request_id=segment.request_id,
                ttft_s=segment.ttft_s,
                usage=segment.usage,
                finish_reason=segment.finish_reason,
                delivered_chars=delivered,
            )
        )
        return segment

    def _report(self, record: AttemptRecord) -> None:
        for hook in self.on_attempt:
            try:
                hook(record)
            except Exception:
                log.exception("on_attempt hook %r failed", hook)

    def _back_off(
        self, call: _Call, model: str, n: int, retry_after: float | None, reason: str
    ) -> None:
        """Sleep before the next attempt (full jitter, >= Retry-After).

        When the wait would pass the deadline, give up on the call instead.
        """
        delay = backoff_delay(n, base=self.retry_base, cap=self.retry_cap, draw=self._random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        remaining = call.deadline_at - self._clock()
        if delay + MIN_ATTEMPT_SECONDS > remaining:
            raise self._deadline_error(
                call, model, f"the next wait ({delay:.2f} s) would pass it", retry_after
            )
        log.info(
            "retry: model %s in %.2f s after %s [call %s, attempt %d]",
            model,
            delay,
            reason,
            call.call_id,
            call.attempts,
        )
        if delay > 0:
            self._sleep(delay)

    # -- errors -------------------------------------------------------------------------

    def _deadline_error(
        self, call: _Call, model: str, why: str = "", retry_after: float | None = None
    ) -> LLMExhaustedError:
        elapsed = self._clock() - call.started
        last = f"; last error: {call.last_error}" if call.last_error else ""
        because = f" ({why})" if why else ""
        return LLMExhaustedError(
            f"no answer from model {model} within the {self.deadline:g} s deadline{because}: "
            f"{call.attempts} attempts in {elapsed:.1f} s to {', '.join(call.endpoints) or '-'}"
            f"{last}",
            attempts=call.attempts,
            models_tried=tuple(call.models),
            endpoints_tried=tuple(call.endpoints),
            partial_text=call.text,
            retry_after=retry_after,
        )

    def _final_error(self, call: _Call, error: Exception) -> Exception:
        """The error that ends the call, carrying the attempts, models and endpoints tried."""
        models = tuple(call.models)
        endpoints = tuple(call.endpoints)
        tried = f" (models tried: {', '.join(models)})" if len(models) > 1 else ""
        if isinstance(error, ChatPermanentError):
            return ResilientPermanentError(
                f"{error}{tried}",
                status_code=error.status_code,
                error_code=error.error_code,
                endpoint=error.endpoint,
                attempts=call.attempts,
                models_tried=models,
                endpoints_tried=endpoints,
            )
        return LLMExhaustedError(
            f"no answer after {call.attempts} attempts to {', '.join(endpoints) or '-'}"
            f"{tried}: {error}",
            attempts=call.attempts,
            models_tried=models,
            endpoints_tried=endpoints,
            partial_text=call.text,
        )


def _is_failover(exc: TransientError) -> bool:
    """503/502/504 or a transport failure (refused, reset, timeout, cut): try another region."""
    status = getattr(exc, "status_code", None)
    return status is None or status in FAILOVER_STATUS


def _is_model_error(exc: ChatPermanentError) -> bool:
    """The model does not exist or is not available: a fallback model may answer."""
    code = (exc.error_code or "").lower()
    return exc.status_code == 404 or code in MODEL_ERROR_CODES


def _short(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    if status is not None:
        return f"HTTP {status}" + (f" {code}" if code else "")
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


def backoff_delay(n: int, *, base: float, cap: float, draw: float) -> float:
    """Full-jitter delay before retry ``n`` (0-based) for a uniform ``draw`` in [0, 1)."""
    return draw * min(cap, base * 2 ** min(n, 60))
