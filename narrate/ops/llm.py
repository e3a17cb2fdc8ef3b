"""Operating the LLM step: response cache, audit log, metrics, anonymisation, assembly.

``build_describer(llm)`` turns ``LLMSettings`` into the describer the pipeline calls::

    AnonymizingDescriber (NARRATE_ANONYMIZE=1: text is anonymised before it leaves)
      └── FallbackDescriber
            ├── ChatDescriber ── ResilientChatClient ── policy: LLMSettings.resilience_policy()
            │                                        ├─ http: one pooled client (HTTP/2, TLS)
            │                                        ├─ cache: ChatResponseCache
            │                                        ├─ limiter: Redis-shared bucket (REDIS_URL)
            │                                        ├─ in_flight: the in-flight gauge
            │                                        └─ on_attempt: AuditHook, MetricsHook
            └── OfflineDescriber (when ``offline`` ends NARRATE_LLM_FALLBACK_MODELS)

One describer is built per distinct settings and reused, so HTTP connections, token
buckets, circuit breakers, the cache connection and the audit file are shared by every call
in the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters import registry
from adapters.llm.base import Describer, Description, DescriptionRequest, OnDelta
from adapters.llm.chat.ratelimit import RateLimiter
from adapters.llm.chat.types import AttemptRecord, ChatRequest, ChatResult
from adapters.llm.chat.types import Usage as ChatUsage
from narrate.config.settings import LLMSettings
from narrate.ops import metrics
from narrate.ops.audit import AuditLog, NullAuditLog, open_audit_log
from narrate.ops.cache import ResponseCache, cache_key, open_cache

if TYPE_CHECKING:  # phonenumbers and friends load when text is first anonymised
    from narrate.ops.pii import Anonymizer

log = logging.getLogger("narrate.llm")

OFFLINE = "offline"


class ChatResponseCache:
    """The resilient client's cache: chat requests in, ``ChatResult``s out, with a TTL.

    Keyed by model, messages (as sent, so after anonymisation) and sampling parameters;
    never by endpoint or key. A hit is counted in the metrics and written to the audit log.
    """

    def __init__(
        self,
        store: ResponseCache,
        *,
        ttl_s: float,
        on_hit: Callable[[ChatRequest, str, ChatResult], None] | None = None,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.on_hit = on_hit

    @staticmethod
    def key(request: ChatRequest, model: str) -> str:
        """The cache key of ``request`` sent to ``model``."""
        params = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        return cache_key(model, request.messages, params)

    def get(self, request: ChatRequest, model: str) -> ChatResult | None:
        """The stored answer, marked ``cached``, or None."""
        value = self.store.get(self.key(request, model))
        metrics.record_cache(value is not None)
        if value is None:
            return None
        usage = value.get("usage")
        result = ChatResult(
            text=str(value["text"]),
            finish_reason=str(value.get("finish_reason", "stop")),
            usage=ChatUsage(**usage) if isinstance(usage, dict) else None,
            latency_s=0.0,
            model=str(value.get("model", model)),
            endpoint=str(value.get("endpoint", "")),
            attempts=0,
            request_id=value.get("request_id"),
            cached=True,
        )
        if self.on_hit is not None:
            self.on_hit(request, model, result)
        return result

    def put(self, request: ChatRequest, model: str, result: ChatResult) -> None:
        """Keep a complete answer for ``ttl_s`` seconds."""
        value = {
            "text": result.text,
            "finish_reason": result.finish_reason,
            "usage": dataclasses.asdict(result.usage) if result.usage is not None else None,
            "model": result.model,
            "endpoint": result.endpoint,
            "request_id": result.request_id,
        }
        self.store.set(self.key(request, model), value, self.ttl_s)


class AuditHook:
    """Writes one audit record per HTTP attempt, and one per cache hit."""

    def __init__(self, audit: AuditLog | NullAuditLog) -> None:
        self.audit = audit

    def __call__(self, record: AttemptRecord) -> None:
        """``on_attempt`` hook: one audit record for one HTTP attempt."""
        self.audit.record(
            request_id=record.request_id,
            endpoint=record.endpoint,
            model=record.model,
            parameters=record.parameters,
            messages=record.messages,
            status=record.status_code or (record.error_code if record.error else 200),
            latency_s=round(record.latency_s, 4),
            tokens=record.usage,
            attempt=record.attempt,
            cache_hit=False,
            outcome=record.outcome,
            error=record.error,
            extra={
                "call_id": record.call_id,
                "finish_reason": record.finish_reason,
                "answered_model": record.answered_model,
                "http_version": record.http_version,
            },
        )

    def cache_hit(self, request: ChatRequest, model: str, result: ChatResult) -> None:
        """``ChatResponseCache`` hook: the answer came from the cache, no request was sent."""
        self.audit.record(
            request_id=result.request_id,
            endpoint=result.endpoint,
            model=model,
            parameters={
                "temperature": request.temperature,
                "top_p": request.top_p,
                "max_tokens": request.max_tokens,
                "stream": request.stream,
            },
            messages=tuple(m.to_dict() for m in request.messages),
            status="cache",
            latency_s=0.0,
            tokens=result.usage,
            attempt=0,
            cache_hit=True,
            outcome="cache_hit",
        )


class MetricsHook:
    """Counts every attempt in the Prometheus metrics, with retries, failovers, fallbacks."""

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}  # call_id -> the previous attempt of that call
        self._lock = threading.Lock()

    def __call__(self, record: AttemptRecord) -> None:
        """``on_attempt`` hook: count one HTTP attempt."""
        kind = "timeout" if "timed out" in (record.error or "").lower() else record.error_code
        status = metrics.status_class(
            record.status_code or (200 if record.outcome == "ok" else None), kind
        )
        metrics.record_llm_request(record.endpoint, record.model, status, record.latency_s)
        if record.outcome == "ok":
            if record.usage is not None:  # unknown counts are not counted as zero
                metrics.record_tokens(
                    record.model, record.usage.prompt_tokens, record.usage.completion_tokens
                )
            if record.ttft_s is not None:
                metrics.record_ttft(record.model, record.ttft_s)
            if record.finish_reason == "length":
                metrics.record_truncation(record.model)
        with self._lock:
            previous = self._last.pop(record.call_id, None)
            if record.outcome != "ok":
                self._last[record.call_id] = record
            if len(self._last) > 10_000:  # calls that ended in an error leave an entry
                self._last.clear()
        if previous is None:
            return
        if previous.model != record.model:
            metrics.record_fallback(previous.model, record.model)
        elif previous.endpoint != record.endpoint:
            metrics.record_failover(previous.endpoint, record.endpoint)
        else:
            metrics.record_retry(metrics.status_class(previous.status_code, previous.error_code))


class _RestoringDeltas:
    """Passes streamed text on with placeholders restored, holding back a half-seen one."""

    def __init__(self, anonymizer: Anonymizer, sink: OnDelta) -> None:
        self.anonymizer = anonymizer
        self.sink = sink
        self.held = ""

    def __call__(self, piece: str) -> None:
        text = self.held + piece
        cut = text.rfind("[")
        if cut != -1 and "]" not in text[cut:] and len(text) - cut <= 16:
            text, self.held = text[:cut], text[cut:]
        else:
            self.held = ""
        if text:
            self.sink(self.anonymizer.restore(text))

    def flush(self) -> None:
        if self.held:
            self.sink(self.anonymizer.restore(self.held))
            self.held = ""


class AnonymizingDescriber:
    """A ``Describer`` that anonymises the OCR text and the question before they leave.

    E-mails, phones, resident IDs, card numbers and IPs become typed placeholders in what is
    sent; the image itself is not sent (its pixels hold the same text). The answer is
    restored locally, so the spoken answer and the result carry the real values.
    """

    def __init__(self, inner: Describer) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def describe(self, request: DescriptionRequest, on_delta: OnDelta | None = None) -> Description:
        """Describe with anonymised text; restore the placeholders in the answer."""
        from narrate.ops.pii import Anonymizer

        anonymizer = Anonymizer()
        safe = dataclasses.replace(
            request,
            ocr_text=anonymizer.anonymize(request.ocr_text).text,
            question=(
                anonymizer.anonymize(request.question).text
                if request.question is not None
                else None
            ),
            image_path=None,
        )
        restoring = _RestoringDeltas(anonymizer, on_delta) if on_delta is not None else None
        description = self.inner.describe(safe, restoring)
        if restoring is not None:
            restoring.flush()
        if anonymizer.counts:
            log.info("anonymised before sending: %s", anonymizer.counts)
        return dataclasses.replace(description, text=anonymizer.restore(description.text))


_DESCRIBERS: dict[str, Describer] = {}
_DESCRIBERS_LOCK = threading.Lock()


def _settings_key(llm: LLMSettings) -> str:
    """A digest of every setting, the key included, for the describer cache."""
    secret = llm.api_key.get_secret_value() if llm.api_key else ""
    return hashlib.sha256((llm.model_dump_json() + "\0" + secret).encode()).hexdigest()


def build_describer(llm: LLMSettings) -> Describer:
    """The describer ``llm`` asks for, built once per distinct settings (see module doc)."""
    offline = llm.resolved_backend == OFFLINE
    key = OFFLINE if offline else _settings_key(llm)
    with _DESCRIBERS_LOCK:
        describer = _DESCRIBERS.get(key)
        if describer is None:
            made = registry.load("llm", OFFLINE) if offline else _make_chat_describer(llm)
            describer = _DESCRIBERS[key] = made
        return describer


def _make_limiter(llm: LLMSettings) -> Callable[[str], RateLimiter] | None:
    """A Redis-shared rate limiter per model when Redis is configured, else None (per process)."""
    if not llm.rate_limit_redis_url or llm.qps <= 0:
        return None
    import redis

    from adapters.llm.chat.ratelimit import RedisTokenBucket

    client = redis.Redis.from_url(llm.rate_limit_redis_url)
    endpoints = ",".join(llm.endpoints)
    buckets: dict[str, RateLimiter] = {}
    lock = threading.Lock()

    def limiter(model: str) -> RateLimiter:
        with lock:
            if model not in buckets:
                digest = hashlib.sha256(f"{endpoints}|{model}".encode()).hexdigest()[:16]
                buckets[model] = RedisTokenBucket(
                    client, f"narrate:llm:bucket:{digest}", llm.qps, llm.burst
                )
            return buckets[model]

    log.info("rate limit: %g/s (burst %d) shared through Redis", llm.qps, llm.burst)
    return limiter


def _make_chat_describer(llm: LLMSettings) -> Describer:
    from adapters.llm.chat.resilient import ResilientChatClient
    from adapters.llm.chat.transport import make_http_client
    from adapters.llm.fallback import FallbackDescriber

    audit_hook = AuditHook(open_audit_log(llm.audit))
    cache = None
    if llm.cache.resolved_backend != "off":
        cache = ChatResponseCache(
            open_cache(llm.cache), ttl_s=llm.cache.ttl_s, on_hit=audit_hook.cache_hit
        )
    client = ResilientChatClient(
        endpoints=llm.endpoints,
        model=llm.model,
        fallback_models=llm.fallback_model_list,
        api_key=llm.api_key,
        policy=llm.resilience_policy(),
        client=make_http_client(
            timeout_s=llm.timeout_s,
            http2=llm.http2,
            tls_min_version=llm.tls_min_version,
            ca_bundle=llm.ca_bundle,
        ),
        cache=cache,
        on_attempt=[audit_hook, MetricsHook()],
        in_flight=metrics.llm_in_flight,
        limiter=_make_limiter(llm),
    )
    chat = registry.load(
        "llm",
        "openai",
        client=client,
        model=llm.model,
        temperature=llm.temperature,
        top_p=llm.top_p,
        max_tokens=llm.max_tokens,
        stream=llm.stream,
        vision=llm.vision,
        enable_thinking=llm.enable_thinking,
    )
    chain: list[Describer] = [chat]
    if OFFLINE in llm.fallback_model_list:
        chain.append(registry.load("llm", "offline"))
    describer: Describer = FallbackDescriber(chain)
    if llm.privacy.anonymize:
        describer = AnonymizingDescriber(describer)
    return describer


def forget_describers() -> None:
    """Drop the built describers (tests that change settings mid-process)."""
    with _DESCRIBERS_LOCK:
        _DESCRIBERS.clear()
