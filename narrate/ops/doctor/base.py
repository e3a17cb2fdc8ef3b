"""The doctor's result types: ``Check`` (one finding) and ``Report`` (all of them)."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from narrate.config.secrets import redact

Status = Literal["OK", "WARN", "FAIL"]


@dataclass(frozen=True)
class Check:
    """The outcome of one check: its status, what was found, and the fix when not OK."""

    name: str
    status: Status
    found: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, secrets redacted."""
        data = dataclasses.asdict(self)
        return {k: _clean(v) for k, v in data.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Report:
    """Every check of one ``narrate doctor`` run."""

    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks with status FAIL."""
        return tuple(c for c in self.checks if c.status == "FAIL")

    @property
    def exit_code(self) -> int:
        """1 when a required check failed, else 0."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        """How many checks have each status."""
        return {s: sum(c.status == s for c in self.checks) for s in ("OK", "WARN", "FAIL")}

    def to_dict(self) -> dict[str, Any]:
        """``{"ok": bool, "counts": {...}, "checks": [...]}``."""
        return {
            "ok": not self.failed,
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_text(self) -> str:
        """One line per check, a ``fix:`` line under each that is not OK."""
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        lines = [f"narrate doctor: {counts}"]
        width = max((len(c.name) for c in self.checks), default=10)
        for check in self.checks:
            lines.append(f"{check.status:<5} {check.name:<{width}}  {redact(check.found)}")
            if check.fix and check.status != "OK":
                lines.append(f"      {'':<{width}}  fix: {redact(check.fix)}")
        return "\n".join(lines)


def run_tool(cmd: list[str], timeout_s: float, env: Mapping[str, str] | None = None) -> str:
    """The standard output and error of ``cmd``, joined.

    Raises:
        OSError: the program cannot be started.
        subprocess.TimeoutExpired: it ran longer than ``timeout_s``.
    """
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout_s, env=dict(env) if env else None
    )
    return done.stdout + done.stderr


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds."""
    return round(seconds * 1000)
