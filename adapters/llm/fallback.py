"""``FallbackDescriber``: describers tried in order, so a description always comes back.

``NARRATE_LLM_FALLBACK_MODELS=qwen-plus,offline`` becomes
``FallbackDescriber([ChatDescriber(ResilientChatClient(...)), OfflineDescriber()])``: the chat
client already falls back across models and regions; when it still fails (out of credit, a
bad key, every model and region down, the deadline passed), the offline describer answers.

The result is marked: ``backend="offline"``/``offline=True`` for the offline answer,
``fallback_from`` names the models (or describers) that failed first, ``attempts`` counts
every HTTP attempt plus the final answer, ``endpoints_tried`` lists the regions tried. What a
chat describer's call did (endpoints, models that failed first, ttft) travels in its
``Description``; nothing is passed around the call.

Bad input (``InputError``) and bad settings (``ConfigError``) are not "failures of the
model": they propagate at once. When streaming deltas were already delivered by a chat
describer that then failed, the offline text is a new, whole description: the deltas were a
preview of an abandoned answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from adapters.errors import AdapterError
from adapters.llm.base import Describer, Description, DescriptionRequest, OnDelta

log = logging.getLogger("narrate.llm")


def describer_name(describer: Describer) -> str:
    """A short name for logs and ``fallback_from``: the model, else the class name."""
    model = getattr(describer, "effective_model", None)
    if isinstance(model, str) and model:
        return model
    if type(describer).__name__ == "OfflineDescriber":
        return "offline"
    return type(describer).__name__


class FallbackDescriber:
    """A ``Describer`` that asks each describer in turn until one answers."""

    def __init__(self, describers: Sequence[Describer]) -> None:
        if not describers:
            raise ValueError("FallbackDescriber needs at least one describer")
        self.describers = tuple(describers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.describers)!r})"

    def describe(self, request: DescriptionRequest, on_delta: OnDelta | None = None) -> Description:
        """The first description any describer in the chain manages; the last error otherwise.

        ``on_delta`` is handed to each describer in turn: a listener that already received
        part of a failed streamed answer sees the next describer's text from its start.
        """
        failed: list[str] = []
        endpoints: list[str] = []
        attempts = 0
        for index, describer in enumerate(self.describers):
            try:
                description = describer.describe(request, on_delta)
            except AdapterError as exc:
                if index + 1 == len(self.describers):
                    raise
                models = getattr(exc, "models_tried", None) or (describer_name(describer),)
                failed.extend(m for m in models if m not in failed)
                endpoints.extend(
                    e for e in getattr(exc, "endpoints_tried", ()) if e not in endpoints
                )
                attempts += int(getattr(exc, "attempts", 1) or 1)
                log.warning(
                    "fallback: %s failed (%s: %s); using %s",
                    describer_name(describer),
                    type(exc).__name__,
                    str(exc)[:300],
                    describer_name(self.describers[index + 1]),
                )
                continue
            if not failed:
                return description
            failed.extend(m for m in description.fallback_from if m not in failed)
            endpoints.extend(e for e in description.endpoints_tried if e not in endpoints)
            return dataclasses.replace(
                description,
                attempts=attempts + description.attempts,
                endpoints_tried=tuple(endpoints),
                fallback_from=tuple(failed),
            )
        raise AssertionError("unreachable")  # pragma: no cover
