"""The exceptions narrate raises.

Library errors are converted at the adapter boundary (``raise X(...) from exc``) so that
callers deal with one small tree::

    NarrateError
     ├── InputError          bad user input: missing, empty, corrupt, oversized, wrong type
     ├── ConfigError         a setting is missing or invalid
     └── AdapterError        a backend (tesseract, espeak-ng, an HTTP API, ...) failed
          ├── TransientError  may succeed when retried: timeouts, 429, 5xx, resets
          │    └── RetriesExhaustedError  the adapter already retried until its deadline
          └── PermanentError  will fail again: 4xx, out of quota, bad credentials

Tasks retry on ``TransientError`` only, and not on ``RetriesExhaustedError`` (retrying an
adapter that has its own retry loop would multiply the attempts); everything else fails
fast with its message.

Every one of them survives pickling (a Dask worker sends the error of a failed task run
back to the flow's process), subclasses with their own ``__init__`` included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NarrateError(Exception):
    """Base class of every error narrate raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls ``type(self)(*self.args)``: a subclass whose
        # ``__init__`` takes other arguments (InputError: path, reason) would fail to
        # unpickle, and Dask would report that TypeError instead of the real reason.
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[NarrateError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """An error of ``cls`` with ``args`` and attributes ``state``, without its ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(NarrateError):
    """A user-supplied file or value cannot be used; the message says which and why."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class ConfigError(NarrateError):
    """A setting is missing or invalid."""


class AdapterError(NarrateError):
    """A backend failed while doing its job."""


class TransientError(AdapterError):
    """A failure that may go away when the same call is retried."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class RetriesExhaustedError(TransientError):
    """Transient failures went on through every retry the adapter makes; don't retry again."""


class PermanentError(AdapterError):
    """A failure that retrying the same call cannot fix."""


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is worth retrying by the caller."""
    return isinstance(exc, TransientError) and not isinstance(exc, RetriesExhaustedError)
