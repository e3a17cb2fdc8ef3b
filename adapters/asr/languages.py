"""The language a transcription is asked for, as each whisper engine names it.

Both engines take ``None``, ``""`` or ``auto`` for "detect it", a code with or without a
region (``en``, ``zh-CN``, ``pt_BR``) or an English name (``chinese``), and pass the engine's
own code on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from adapters.errors import ConfigError

AUTO: frozenset[str | None] = frozenset({None, "", "auto"})


def language_code(
    language: str | None, codes: Collection[str], names: Mapping[str, str]
) -> str | None:
    """The engine's code for ``language``; None means detect it.

    Args:
        language: ``None``/``""``/``auto``, a code (the region, ``-CN`` or ``_BR``, is dropped)
            or an English name, in any case.
        codes: the engine's language codes (``en``, ``zh``, ...).
        names: lower-case English names to codes (``chinese`` -> ``zh``).

    Returns:
        A member of ``codes``, or None for auto-detection.

    Raises:
        ConfigError: the engine knows no such language.
    """
    if language in AUTO:
        return None
    key = str(language).strip().lower().split("-")[0].split("_")[0]
    key = names.get(key, key)
    if key in codes:
        return key
    raise ConfigError(f"unknown language {language!r}; use a code such as en, zh, de, fr")
