"""``ResilientChatClient``: the chat client that survives what production servers do.

It wraps the one-attempt ``OpenAICompatClient`` and, per call::

    for model in [model, *fallback_models]:            unknown model -> next model at once
        until the answer is complete:                  retries used up -> next model
            endpoint = first allowed by its breaker    503/502/504, connection failure
            rate limiter (per model)                   -> next endpoint at once, breaker++
            one attempt (timeout <= time left)         429/408/409/500/... -> back off
            no finish reason / "length"                -> continue the answer
            context full while continuing              -> keep the text, marked truncated

What to do after a failed attempt and how long to wait come from the pure functions of
``adapters.llm.chat.policy``, with the numbers of one frozen ``ResiliencePolicy``.

- **Incomplete answers are incomplete**: a stream cut mid-way, a clean early end, ``[DONE]``
  without a finish reason, ``finish_reason: "null"`` are continued (``adapters.llm.chat.
  continuation``: partial mode where the server supports it, the portable form elsewhere,
  restarts and repeated seams removed). An empty incomplete stream is asked again without
  streaming, so a server that fails streams silently (llama.cpp over its context) gets to
  say why. When continuing is impossible the text so far is returned, ``truncated``.
- **Filtered answers are marked**: ``content_filter`` (any stop but ``stop``/``length``)
  gives ``filtered=True`` with the reason in ``finish_reason``.
- **Accounting travels in the result**: answering endpoint, the model the server reported
  (and the one asked for), usage summed over the call (None when any answer had none),
  attempts, continuations, HTTP version, endpoints tried, models that failed first.

Hooks: ``on_attempt`` callables get an ``AttemptRecord`` after every HTTP attempt;
``in_flight`` is a context-manager factory wrapped around each attempt (metrics);
``cache`` stores complete answers; ``limiter(model)`` returns the rate limiter to use (the
process-wide token bucket by default, a Redis-shared one when the caller gives it).
Retries, failovers, fallbacks and continuations each log one line on ``narrate.llm``; the
API key never appears in a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from adapters.llm.chat.breaker import CircuitBreaker, shared_breaker
from adapters.llm.chat.continuation import (
    ContinuationJoiner,
    continuation_messages,
    cut_at_sentence,
    partial_mode,
)
from adapters.llm.chat.errors import (
    ChatError,
    ChatTransientError,
    ContextLengthError,
    LLMExhaustedError,
)
from adapters.llm.chat.policy import ResiliencePolicy, next_step, retry_delay
from adapters.llm.chat.ratelimit import RateLimiter, shared_bucket
from adapters.llm.chat.replies import finish_kind
from adapters.llm.chat.transport import HoldsApiKey, HoldsHttpClient
from adapters.llm.chat.types import (
    AttemptRecord,
    ChatRequest,
    ChatResult,
    OnDelta,
    Usage,
    add_usage,
)
from adapters.llm.chat.wire import OpenAICompatClient

log = logging.getLogger("narrate.llm")

OFFLINE = "offline"  # a fallback-model name handled by the describer level, not here
MIN_ATTEMPT_SECONDS = 0.01  # less time than this left: do not start another request

# Endpoints whose partial-mode continuation restarted the answer: portable from then on.
_NO_PARTIAL: set[str] = set()
_WARNED_MODELS: set[tuple[str, str, str]] = set()
_LISTINGS: dict[tuple[tuple[str, ...], str], dict[str, Any] | None] = {}
_STATE_LOCK = threading.Lock()


class ChatResultCache(Protocol):
    """What ``ResilientChatClient(cache=...)`` needs from a response cache."""

    def get(self, request: ChatRequest, model: str) -> ChatResult | None:
        """A stored answer for ``request`` sent to ``model``, or None."""
        ...

    def put(self, request: ChatRequest, model: str, result: ChatResult) -> None:
        """Store a complete answer to ``request`` sent to ``model`` (whoever answered it)."""
        ...


def split_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a, b,,c"`` (or an iterable of such strings) as ``("a", "b", "c")``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


def reset_continuation_probes() -> None:
    """Forget which endpoints ignored partial mode (tests; re-read settings)."""
    with _STATE_LOCK:
        _NO_PARTIAL.clear()
        _WARNED_MODELS.clear()
        _LISTINGS.clear()


class _NextModel(Exception):
    """Internal: this model cannot answer; carry on with the next fallback model."""

    def __init__(self, reason: str, error: ChatError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass
class _Call:
    """Mutable state of one call, across attempts, endpoints and models."""

    call_id: str
    started: float
    deadline_at: float
    on_delta: OnDelta | None
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = field(default_factory=Usage)
    attempts: int = 0
    endpoints: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)
    continuations: int = 0
    ttft: float | None = None
    last_error: ChatError | None = None
    plain_next: bool = False  # ask without streaming next (an empty stream said nothing)
    reasoning_chars: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass
class _ModelState:
    """Per-model state of one call: failures, back-offs, endpoints failed in this round."""

    failures: int = 0
    backoffs: int = 0
    round_failed: set[str] = field(default_factory=set)


def _emit(call: _Call, piece: str, clock: Callable[[], float]) -> None:
    """Append new answer text to the call and hand it to the listener."""
    if call.ttft is None:
        call.ttft = clock() - call.started
    call.parts.append(piece)
    if call.on_delta is not None:
        call.on_delta(piece)


class ResilientChatClient(HoldsApiKey, HoldsHttpClient):
    """``ChatClient`` with rate limiting, retries, failover, model fallback, continuation."""

    _repr_fields = ("endpoints", "model", "fallback_models")

    def __init__(
        self,
        *,
        endpoints: Sequence[str],
        model: str = "qwen3-max",
        fallback_models: Sequence[str] = (),
        api_key: SecretStr | str | None = None,
        policy: ResiliencePolicy | None = None,
        client: httpx.Client | None = None,
        cache: ChatResultCache | None = None,
        on_attempt: Iterable[Callable[[AttemptRecord], None]] = (),
        in_flight: Callable[[], AbstractContextManager[object]] | None = None,
        limiter: Callable[[str], RateLimiter] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = tuple(dict.fromkeys(e.rstrip("/") for e in endpoints if e.strip()))
        if not self.endpoints:
            raise ValueError("ResilientChatClient needs at least one endpoint")
        self.model = model
        self.fallback_models = tuple(m for m in split_list(fallback_models) if m != OFFLINE)
        self._hold_api_key(api_key)
        self.policy = policy or ResiliencePolicy()
        self.cache = cache
        self.on_attempt: list[Callable[[AttemptRecord], None]] = list(on_attempt)
        self._in_flight = in_flight or contextlib.nullcontext
        self._limiter = limiter
        self._sleep = sleep
        self._clock = clock
        self._random = (rng or random.Random()).random
        self._hold_http(client, self.policy.timeout_s)

    # -- shared process-wide state --------------------------------------------------------

    def breaker(self, endpoint: str) -> CircuitBreaker:
        """The process-wide circuit breaker of ``endpoint``."""
        return shared_breaker(
            endpoint, self.policy.breaker_threshold, self.policy.breaker_cooldown_s
        )

    def limiter(self, model: str) -> RateLimiter:
        """The rate limiter for ``model``: the caller's, else this process's token bucket."""
        if self._limiter is not None:
            return self._limiter(model)
        return shared_bucket((self.endpoints, model), self.policy.qps, self.policy.burst)

    def model_entry(self, model: str) -> dict[str, Any] | None:
        """The first reachable endpoint's ``/models`` entry for ``model`` (cached), or None."""
        key = (self.endpoints, model)
        with _STATE_LOCK:
            if key in _LISTINGS:
                return _LISTINGS[key]
        entry: dict[str, Any] | None = None
        for endpoint in self.endpoints:
            wire = OpenAICompatClient(
                base_url=endpoint,
                model=model,
                api_key=self._api_key,
                timeout_s=min(10.0, self.policy.timeout_s),
                client=self._http,
            )
            try:
                entries = wire.models()
            except ChatError as exc:
                log.info("model listing: %s unavailable (%s)", endpoint, exc.short())
                continue
            entry = next((e for e in entries if e.get("id") == model), None)
            break
        with _STATE_LOCK:
            _LISTINGS[key] = entry
        return entry

    # -- public API ---------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResult:
        """Answer ``request`` (streamed on the wire when ``request.stream``), surviving faults.

        Args:
            request: messages and sampling parameters; ``model=None`` uses ``self.model``.

        Returns:
            The whole answer with the call's accounting (see the module docstring).

        Raises:
            LLMExhaustedError: no answer within the retries and the deadline (transient,
                but not to be retried again by the caller).
            ChatPermanentError: a subclass saying why retrying cannot help (no credit, bad
                key, unknown path, prompt too long, image parts refused, no model left).
        """
        return self._call(request, None)

    def stream(self, request: ChatRequest, on_delta: OnDelta | None = None) -> ChatResult:
        """Stream ``request``; ``on_delta`` gets every new piece of text exactly once.

        Args:
            request: as for ``complete`` (``stream`` is forced on).
            on_delta: called with each piece of new answer text, in order.

        Returns:
            As ``complete``.

        Raises:
            As ``complete``.
        """
        return self._call(dataclasses.replace(request, stream=True), on_delta)

    # -- the call -----------------------------------------------------------------------

    def _call(self, request: ChatRequest, on_delta: OnDelta | None) -> ChatResult:
        first = request.model or self.model
        models = [first, *(m for m in self.fallback_models if m != first)]
        if self.cache is not None:
            cached = self.cache.get(request, first)
            if cached is not None:
                if on_delta is not None and cached.text:
                    on_delta(cached.text)
                return cached
        started = self._clock()
        call = _Call(uuid.uuid4().hex[:16], started, started + self.policy.deadline_s, on_delta)
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
            if self.cache is not None and not (result.truncated or result.filtered):
                self.cache.put(request, first, result)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _call_model(self, request: ChatRequest, model: str, call: _Call) -> ChatResult:
        """Answer with ``model``: retries, failover, continuation; ``_NextModel`` to give up."""
        state = _ModelState()
        while True:
            endpoint = self._next_endpoint(call, model, state)
            if endpoint is None:
                continue
            try:
                segment, joiner = self._attempt(request, model, endpoint, call)
            except ChatError as exc:
                kept = self._after_error(exc, call, model, endpoint, state)
                if kept is not None:
                    return kept
                continue
            except BaseException:
                self.breaker(endpoint).release()
                raise
            result = self._after_answer(request, segment, joiner, call, model, endpoint, state)
            if result is not None:
                return result

    def _next_endpoint(self, call: _Call, model: str, state: _ModelState) -> str | None:
        """The endpoint for the next attempt, its rate-limit token taken; None to loop again.

        Raises ``LLMExhaustedError`` when the deadline leaves no time.
        """
        remaining = call.deadline_at - self._clock()
        if remaining < MIN_ATTEMPT_SECONDS:
            raise self._deadline_error(call, model)
        endpoint = self._pick_endpoint(state.round_failed)
        if endpoint is None:  # every endpoint failed in this round: back off, start over
            self._back_off(call, model, state.backoffs, None, "every endpoint failed")
            state.backoffs += 1
            state.round_failed.clear()
            return None
        if not self.limiter(model).acquire(max_wait_s=remaining):
            self.breaker(endpoint).release()  # give back a probe slot we may hold
            raise self._deadline_error(call, model, "the rate limit leaves no time")
        return endpoint

    def _after_error(
        self, exc: ChatError, call: _Call, model: str, endpoint: str, state: _ModelState
    ) -> ChatResult | None:
        """Apply the policy to a failed attempt: wait, fail over, move on, or give up.

        Returns the text so far as a truncated answer when continuing is impossible, else
        None (try again); raises ``_NextModel`` or the call's final error.
        """
        call.last_error = exc
        step = next_step(exc)
        breaker = self.breaker(endpoint)
        if step == "failover":
            breaker.record_failure()
            state.round_failed.add(endpoint)
        else:
            breaker.record_success()  # it answered: the endpoint is up
        if isinstance(exc, ContextLengthError) and call.text:
            return self._kept(call, model, endpoint, "the context is full")
        if step == "next_model":
            raise _NextModel(exc.short(), exc) from exc
        if step == "fail":
            raise self._final_error(call, exc) from exc
        state.failures += 1
        if state.failures > self.policy.max_retries:
            raise _NextModel(f"{state.failures} failed attempts", exc) from exc
        if step == "failover":
            following = self._pick_endpoint(state.round_failed, claim=False)
            if following is not None:
                log.warning(
                    "failover: %s failed (%s); trying %s [call %s, attempt %d]",
                    endpoint,
                    exc.short(),
                    following,
                    call.call_id,
                    call.attempts,
                )
                return None
        self._back_off(call, model, state.backoffs, exc.retry_after_s, exc.short())
        state.backoffs += 1
        if step == "failover":  # the last endpoint standing failed too: a new round
            state.round_failed.clear()
        return None

    def _after_answer(
        self,
        request: ChatRequest,
        segment: ChatResult,
        joiner: ContinuationJoiner | None,
        call: _Call,
        model: str,
        endpoint: str,
        state: _ModelState,
    ) -> ChatResult | None:
        """The call's result once an attempt answered, or None when the answer goes on."""
        self.breaker(endpoint).record_success()
        call.usage = add_usage(call.usage, segment.usage)
        call.reasoning_chars += segment.reasoning_chars
        self._note_model(endpoint, model, segment.model)
        if joiner is not None and joiner.dropped:
            return self._kept(call, model, endpoint, "the continuation restarted the answer")
        kind = finish_kind(segment.finish_reason)
        if kind == "incomplete":
            new_text = joiner.emitted if joiner is not None else segment.text
            if not new_text:  # an empty stream says nothing: ask plainly, like a failure
                call.plain_next = request.stream
                state.failures += 1
                call.last_error = ChatTransientError(
                    f"{endpoint} (model {model}) ended the answer without any text or "
                    "finish reason",
                    endpoint=endpoint,
                    model=model,
                )
                if state.failures <= self.policy.max_retries:
                    return None
                if call.text:
                    return self._kept(call, model, endpoint, "no more text came")
                raise _NextModel(f"{state.failures} failed attempts", call.last_error)
            if call.continuations >= self.policy.max_continuations + self.policy.max_retries:
                return self._kept(call, model, endpoint, "it kept ending early")
            call.continuations += 1
            log.info(
                "continuation %d: %s (model %s) ended early after %d chars [call %s]",
                call.continuations,
                endpoint,
                model,
                len(call.text),
                call.call_id,
            )
            return None
        if kind == "length" and call.continuations < self.policy.max_continuations:
            call.continuations += 1
            log.info(
                "continuation %d/%d: %s (model %s) hit the token limit after %d chars [call %s]",
                call.continuations,
                self.policy.max_continuations,
                endpoint,
                model,
                len(call.text),
                call.call_id,
            )
            return None
        return self._result(
            call,
            segment,
            endpoint,
            truncated=kind == "length",
            filtered=kind == "filtered",
            text=call.text,
        )

    def _result(
        self,
        call: _Call,
        segment: ChatResult,
        endpoint: str,
        *,
        truncated: bool,
        filtered: bool,
        text: str,
    ) -> ChatResult:
        return ChatResult(
            text=text,
            finish_reason=segment.finish_reason,
            usage=call.usage,
            latency_s=self._clock() - call.started,
            model=segment.model,
            endpoint=endpoint,
            attempts=call.attempts,
            truncated=truncated,
            filtered=filtered,
            ttft_s=call.ttft,
            request_id=segment.request_id,
            endpoints_tried=tuple(call.endpoints),
            fallback_from=tuple(call.failed_models),
            continuations=call.continuations,
            requested_model=segment.requested_model,
            http_version=segment.http_version,
            reasoning_chars=call.reasoning_chars,
        )

    def _kept(self, call: _Call, model: str, endpoint: str, why: str) -> ChatResult:
        """The text so far as a truncated answer, ending at a sentence boundary."""
        log.warning(
            "truncated: %s (model %s) cannot continue the answer (%s); keeping %d chars [call %s]",
            endpoint,
            model,
            why,
            len(call.text),
            call.call_id,
        )
        kept = cut_at_sentence(call.text)
        segment = ChatResult(
            text=kept,
            finish_reason="length",
            usage=None,
            latency_s=0.0,
            model=model,
            endpoint=endpoint,
            requested_model=model,
        )
        return self._result(call, segment, endpoint, truncated=True, filtered=False, text=kept)

    def _note_model(self, endpoint: str, asked: str, answered: str) -> None:
        """Warn once when a server answers with another model than the one asked for."""
        if not answered or answered == asked:
            return
        key = (endpoint, asked, answered)
        with _STATE_LOCK:
            if key in _WARNED_MODELS:
                return
            _WARNED_MODELS.add(key)
        log.warning(
            "model: %s was asked for %s and answered as %s (the result records %s)",
            endpoint,
            asked,
            answered,
            answered,
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

    def _attempt(
        self, request: ChatRequest, model: str, endpoint: str, call: _Call
    ) -> tuple[ChatResult, ContinuationJoiner | None]:
        """Send one request (continuing ``call.text`` if any) and report it to the hooks."""
        call.attempts += 1
        if endpoint not in call.endpoints:
            call.endpoints.append(endpoint)
        prefix = call.text
        messages = request.messages
        joiner: ContinuationJoiner | None = None
        partial = False
        if prefix:
            with _STATE_LOCK:
                partial = partial_mode(endpoint, self.policy.continuation) and (
                    endpoint not in _NO_PARTIAL
                )
            messages = continuation_messages(messages, prefix, partial=partial)
            joiner = ContinuationJoiner(prefix, partial=partial)
        stream = request.stream and not call.plain_next
        call.plain_next = False
        segment_request = dataclasses.replace(
            request, messages=messages, model=model, stream=stream
        )
        remaining = call.deadline_at - self._clock()
        client = OpenAICompatClient(
            base_url=endpoint,
            model=model,
            api_key=self._api_key,
            timeout_s=max(MIN_ATTEMPT_SECONDS, min(self.policy.timeout_s, remaining)),
            client=self._http,
        )
        delivered = 0

        def deliver(piece: str) -> None:
            nonlocal delivered
            if joiner is not None:
                piece = joiner.feed(piece)
            if piece:
                _emit(call, piece, self._clock)
                delivered += len(piece)

        common: dict[str, Any] = {
            "time": time.time(),
            "call_id": call.call_id,
            "attempt": call.attempts,
            "endpoint": endpoint,
            "model": model,
            "parameters": {
                "temperature": request.temperature,
                "top_p": request.top_p,
                "max_tokens": request.max_tokens,
                "stream": stream,
                "continuation": ("partial" if partial else "portable") if prefix else None,
                "continued_chars": len(prefix),
            },
            "messages": tuple(m.to_dict() for m in segment_request.messages),
        }
        started = self._clock()
        try:
            with self._in_flight():
                segment = client.send(segment_request, on_delta=deliver)
            if joiner is not None:
                rest = joiner.finish()
                if rest:
                    _emit(call, rest, self._clock)
                    delivered += len(rest)
                if joiner.restarted and partial:
                    with _STATE_LOCK:
                        _NO_PARTIAL.add(endpoint)
                    log.warning(
                        "continuation: %s ignored partial mode (the answer restarted); "
                        "continuing it the portable way from now on",
                        endpoint,
                    )
        except ChatError as exc:
            self._report(
                AttemptRecord(
                    **common,
                    outcome="transient" if next_step(exc) in ("retry", "failover") else "permanent",
                    latency_s=self._clock() - started,
                    status_code=exc.status_code,
                    error_code=exc.error_code,
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
                http_version=segment.http_version,
                answered_model=segment.model,
            )
        )
        return segment, joiner

    def _report(self, record: AttemptRecord) -> None:
        for hook in self.on_attempt:
            try:
                hook(record)
            except Exception:
                log.exception("on_attempt hook %r failed", hook)

    def _back_off(
        self, call: _Call, model: str, n: int, retry_after_s: float | None, reason: str
    ) -> None:
        """Sleep before the next attempt unless that would pass the deadline (then give up)."""
        delay = retry_delay(n, self.policy, draw=self._random(), retry_after_s=retry_after_s)
        remaining = call.deadline_at - self._clock()
        if delay + MIN_ATTEMPT_SECONDS > remaining:
            raise self._deadline_error(
                call, model, f"the next wait ({delay:.2f} s) would pass it", retry_after_s
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
        self, call: _Call, model: str, why: str = "", retry_after_s: float | None = None
    ) -> LLMExhaustedError:
        elapsed = self._clock() - call.started
        last = f"; last error: {call.last_error}" if call.last_error else ""
        because = f" ({why})" if why else ""
        return LLMExhaustedError(
            f"no answer from model {model} within the {self.policy.deadline_s:g} s deadline"
            f"{because}: {call.attempts} attempts in {elapsed:.1f} s to "
            f"{', '.join(call.endpoints) or '-'}{last}",
            model=model,
            attempts=call.attempts,
            models_tried=tuple(call.models),
            endpoints_tried=tuple(call.endpoints),
            partial_text=call.text,
            retry_after_s=retry_after_s,
        )

    def _final_error(self, call: _Call, error: ChatError) -> ChatError:
        """The error that ends the call: its kind kept, with the attempts, models, endpoints."""
        tried = f" (models tried: {', '.join(call.models)})" if len(call.models) > 1 else ""
        facts = {
            **error.facts(),
            "attempts": call.attempts,
            "models_tried": tuple(call.models),
            "endpoints_tried": tuple(call.endpoints),
            "partial_text": call.text,
        }
        if next_step(error) in ("retry", "failover"):
            return LLMExhaustedError(
                f"no answer after {call.attempts} attempts to "
                f"{', '.join(call.endpoints) or '-'}{tried}: {error}",
                **facts,
            )
        return type(error)(f"{error}{tried}", **facts)
