"""The chat client's errors: the HTTP facts held once, in ``ChatError`` (as httpx does).

::

    ChatError (AdapterError)           status_code, error_code, endpoint, model, retry_after_s,
     │                                 attempts, models_tried, endpoints_tried, partial_text
     ├── ChatTransientError (TransientError)      a retry may help: 429, 5xx, resets, cuts
     │    └── LLMExhaustedError (RetriesExhaustedError)  retries/deadline used up; don't retry
     └── ChatPermanentError (PermanentError)     retrying the same request cannot help
          ├── ModelNotFoundError        the model does not exist here: next fallback at once
          ├── EndpointNotFoundError     404 on the path: a wrong base URL (missing ``/v1``?)
          ├── ContextLengthError        the prompt (plus text so far) exceeds the context
          ├── ImageInputRejectedError   the server refused image parts (a text-only model)
          └── EmptyAnswerError          only reasoning, no answer text

Subclasses add meaning, not fields. Messages never hold the API key or an HTML body.
"""

from __future__ import annotations

from typing import Any

from adapters.errors import AdapterError, PermanentError, RetriesExhaustedError, TransientError


class ChatError(AdapterError):
    """A chat call failed; carries what is known about where and why.

    Attributes:
        status_code: HTTP status of the error reply (or the ``code`` of an error object in a
            200), None for a transport failure.
        error_code: the server's error code or type (``insufficient_quota``, ...).
        endpoint: the base URL that failed.
        model: the model asked for.
        retry_after_s: seconds the server asked to wait, if it did.
        attempts / models_tried / endpoints_tried: filled in by the resilient client for the
            error that ends a whole call.
        partial_text: answer text received before the failure (already delivered to a
            listener, if any).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        retry_after_s: float | None = None,
        attempts: int = 1,
        models_tried: tuple[str, ...] = (),
        endpoints_tried: tuple[str, ...] = (),
        partial_text: str = "",
    ) -> None:
        Exception.__init__(self, message)
        self.status_code = status_code
        self.error_code = error_code
        self.endpoint = endpoint
        self.model = model
        self.retry_after_s = retry_after_s
        self.attempts = attempts
        self.models_tried = models_tried
        self.endpoints_tried = endpoints_tried
        self.partial_text = partial_text

    def facts(self) -> dict[str, Any]:
        """The fields, to rebuild this error (or another kind) with ``**facts``."""
        return {
            "status_code": self.status_code,
            "error_code": self.error_code,
            "endpoint": self.endpoint,
            "model": self.model,
            "retry_after_s": self.retry_after_s,
            "attempts": self.attempts,
            "models_tried": self.models_tried,
            "endpoints_tried": self.endpoints_tried,
            "partial_text": self.partial_text,
        }

    def short(self) -> str:
        """``HTTP 503 overloaded`` or the first 120 characters of the message, for logs."""
        if self.status_code is not None:
            return f"HTTP {self.status_code}" + (f" {self.error_code}" if self.error_code else "")
        text = str(self)
        return text if len(text) <= 120 else text[:117] + "..."


class ChatTransientError(ChatError, TransientError):
    """A chat call failed in a way a retry may fix."""


class ChatPermanentError(ChatError, PermanentError):
    """A chat call failed in a way retrying the same request cannot fix."""


class LLMExhaustedError(ChatError, RetriesExhaustedError):
    """No answer within the retries and the deadline, on every endpoint and model."""


class ModelNotFoundError(ChatPermanentError):
    """The server does not know the model: the next fallback model is tried at once."""


class EndpointNotFoundError(ChatPermanentError):
    """HTTP 404 for the chat path itself: the base URL is wrong (often a missing ``/v1``)."""


class ContextLengthError(ChatPermanentError):
    """The prompt (with any text so far) does not fit the model's context window."""


class ImageInputRejectedError(ChatPermanentError):
    """The server refused a request with image parts (a text-only model or server)."""


class EmptyAnswerError(ChatPermanentError):
    """The model sent reasoning but no answer text."""
