"""The chat client: OpenAI-compatible chat completions that survive real servers.

Layers, bottom up (each module imports only those above it in this list)::

    types.py        ChatMessage, ChatRequest, Usage, ChatResult, AttemptRecord, ChatClient
    errors.py       ChatError (the HTTP facts, once) and its kinds
    replies.py      pure reading of replies: error bodies, pages, finish reasons, usage
    policy.py       ResiliencePolicy (one frozen object) + next_step / retry_delay (pure)
    continuation.py continuing a cut answer on any server (partial or portable), joins
    breaker.py      per-endpoint circuit breaker, process-wide
    ratelimit.py    token buckets: per process, or shared by every worker through Redis
    transport.py    the pooled httpx client: HTTP/2, TLS minimum version, CA bundle
    wire.py         OpenAICompatClient: exactly one attempt on the wire
    resilient.py    ResilientChatClient: retries, failover, fallback, continuation

The describers (``adapters.llm``) use a ``ChatClient``; nothing here knows about images,
prompts or speech.
"""

from adapters.llm.chat.errors import (
    ChatError,
    ChatPermanentError,
    ChatTransientError,
    ContextLengthError,
    EmptyAnswerError,
    EndpointNotFoundError,
    ImageInputRejectedError,
    LLMExhaustedError,
    ModelNotFoundError,
)
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.types import (
    AttemptRecord,
    ChatClient,
    ChatMessage,
    ChatRequest,
    ChatResult,
    Usage,
)

__all__ = [
    "AttemptRecord",
    "ChatClient",
    "ChatError",
    "ChatMessage",
    "ChatPermanentError",
    "ChatRequest",
    "ChatResult",
    "ChatTransientError",
    "ContextLengthError",
    "EmptyAnswerError",
    "EndpointNotFoundError",
    "ImageInputRejectedError",
    "LLMExhaustedError",
    "ModelNotFoundError",
    "ResiliencePolicy",
    "Usage",
]
