"""Prompt templates (``assets/prompts/*.txt``) and the chat messages built from them.

Templates use ``string.Template`` syntax: ``$ocr_text``, ``$features``, ``$language``,
``$question`` (write ``$$`` for a literal dollar sign). Values are inserted verbatim and
never re-expanded, so OCR text containing ``$`` is safe.
"""

from __future__ import annotations

from importlib import resources
from string import Template

from adapters.errors import ConfigError
from adapters.llm.base import DescriptionRequest
from adapters.llm.chat.types import ChatMessage

LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese"}
MAX_OCR_CHARS = 6000  # bounds the prompt (and its cost) for pages full of text
NO_TEXT = "(no text was found in the image)"
NO_FEATURES = "(no features were measured)"


def template_names() -> list[str]:
    """The names of the shipped templates, e.g. ``["answer_system", ...]``."""
    folder = resources.files("assets") / "prompts"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_template(name: str) -> Template:
    """The template ``assets/prompts/<name>.txt``; ConfigError when there is none."""
    path = resources.files("assets") / "prompts" / f"{name}.txt"
    if not path.is_file():
        raise ConfigError(
            f"no prompt template named {name!r}; available: {', '.join(template_names())}"
        )
    return Template(path.read_text(encoding="utf-8"))


def render(name: str, **variables: object) -> str:
    """Fill template ``name`` with ``variables``; a missing variable is a ConfigError naming it."""
    template = load_template(name)
    try:
        return template.substitute({k: str(v) for k, v in variables.items()}).strip()
    except KeyError as exc:
        missing = exc.args[0]
        raise ConfigError(
            f"prompt template {name!r} needs the variable ${missing}; pass {missing}=..."
        ) from None
    except ValueError as exc:
        raise ConfigError(f"prompt template {name!r} is malformed: {exc}") from exc


def clip_ocr_text(text: str, limit: int = MAX_OCR_CHARS) -> str:
    """``text`` stripped, or a placeholder when empty, cut to ``limit`` characters."""
    text = text.strip()
    if not text:
        return NO_TEXT
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + " [...]"


def build_messages(request: DescriptionRequest) -> tuple[ChatMessage, ...]:
    """System and user messages: an answer when ``request`` has a question, else a description."""
    variables = {
        "language": LANGUAGE_NAMES.get(request.language, "English"),
        "ocr_text": clip_ocr_text(request.ocr_text),
        "features": request.features_summary.strip() or NO_FEATURES,
    }
    if request.question and request.question.strip():
        variables["question"] = request.question.strip()
        kind = "answer"
    else:
        kind = "describe"
    return (
        ChatMessage("system", render(f"{kind}_system", **variables)),
        ChatMessage("user", render(f"{kind}_user", **variables)),
    )
