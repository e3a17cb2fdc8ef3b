"""A batch's token budget: how many LLM tokens (prompt + completion) one run may spend.

``TokenBudget(limit)`` is shared by the items of one batch. The batch charges it with the
tokens each finished item reports and checks it twice: before an item starts and right
before the item's LLM call. Once ``used >= limit`` no further LLM call starts; the items
left are recorded as ``skipped`` with the reason ``BUDGET_REASON`` and are not written to
the manifest, so the next run (with a fresh budget) picks them up.

Items already in flight when the budget runs out still finish, so a run can end above its
limit by at most the tokens of ``concurrency - 1`` answers. ``limit=None`` means no limit.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from adapters.errors import NarrateError
from adapters.text import han_count

BUDGET_REASON = "token budget reached"


class TokenBudgetReached(NarrateError):
    """Raised before an LLM call once the batch's token budget is used up."""


class TokenBudget:
    """Tokens used against an optional limit; thread-safe, picklable (the lock is not sent)."""

    def __init__(self, limit: int | None = None, used: int = 0) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a token budget must be at least 1 token (got {limit})")
        self.limit = limit
        self._used = used
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Tokens charged so far."""
        return self._used

    @property
    def reached(self) -> bool:
        """True once the limit is set and used up."""
        return self.limit is not None and self._used >= self.limit

    def charge(self, tokens: int) -> None:
        """Add ``tokens`` (prompt + completion of one answer) to what was used."""
        if tokens > 0:
            with self._lock:
                self._used += int(tokens)

    def check(self) -> None:
        """Raise ``TokenBudgetReached`` when no further LLM call may start.

        Raises:
            TokenBudgetReached: the limit is used up.
        """
        if self.reached:
            raise TokenBudgetReached(f"{BUDGET_REASON} ({self.summary()})")

    def summary(self) -> str:
        """``"1234 of 5000 tokens"``, or ``"1234 tokens (no budget)"``."""
        if self.limit is None:
            return f"{self._used} tokens (no budget)"
        return f"{self._used} of {self.limit} tokens"

    def __getstate__(self) -> dict[str, Any]:
        return {"limit": self.limit, "_used": self._used}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.limit = state["limit"]
        self._used = state["_used"]
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBudget(limit={self.limit}, used={self._used})"


PROMPT_OVERHEAD_TOKENS = 300  # the system prompt, the features summary and the framing


def estimate_tokens(*texts: str) -> int:
    """A generous token count for a call whose server reported no usage.

    Counts one token per Han character and one per three other characters (English runs
    about four characters a token in OpenAI-style BPE vocabularies, Qwen's included), plus
    the prompt's fixed part. It is meant for the budget, which must not treat such calls
    as free.

    Args:
        texts: the text sent (the OCR text) and the text received (the answer).

    Returns:
        The estimated total tokens of the call.
    """
    total = PROMPT_OVERHEAD_TOKENS
    for text in texts:
        han = han_count(text)
        total += han + (len(text) - han + 2) // 3
    return total


def tokens_line(summary: Mapping[str, Any]) -> str:
    """The batch summary's tokens against its budget, as the CLI prints it.

    Args:
        summary: ``BatchSummary.to_dict()`` (``tokens``, ``token_budget``, ``skipped_budget``).

    Returns:
        e.g. ``"LLM tokens: 5123 of 5000 (budget reached: 3 image(s) left for a later run)"``.
    """
    used, limit = summary.get("tokens", 0), summary.get("token_budget")
    if limit is None:
        return f"LLM tokens: {used} (no budget)"
    line = f"LLM tokens: {used} of {limit}"
    if left := summary.get("skipped_budget"):
        line += f" (budget reached: {left} image(s) left for a later run)"
    return line
