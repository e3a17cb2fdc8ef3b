"""The LLM endpoint, region by region: DNS, TCP, TLS, ``GET /models``, a one-token chat call.

Each stage is one ``Check`` with its latency; the chain for a region stops at the first stage
that fails. The probe speaks HTTP with httpx and builds its TLS context with
``httpx.create_ssl_context()``, as narrate's client does, so the CA bundle (``SSL_CERT_FILE``)
and proxies (``HTTPS_PROXY``) count the same way. The key only goes into an
``Authorization`` header.
"""

from __future__ import annotations

import concurrent.futures
import json
import shlex
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from narrate.config.settings import DASHSCOPE_BEIJING, Settings
from narrate.ops.doctor.base import Check, Status, ms
from narrate.ops.metrics import endpoint_label

#: The chat call: one token, so a check costs next to nothing.
CHAT_PROBE: dict[str, Any] = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
SLOW_FIX = "the server is overloaded or a proxy holds the request; retry, or raise --timeout"


def chat_url(base_url: str) -> str:
    """The chat-completions URL under an OpenAI-compatible base URL."""
    return base_url.rstrip("/") + "/chat/completions"


def curl_command(base_url: str, model: str, timeout_s: float = 30.0) -> str:
    """The one-token chat call as a ``curl`` command; the key is ``$DASHSCOPE_API_KEY``.

    The URL loses any credentials and query string (``endpoint_label``); nothing secret is
    in the result, so it can go into a support ticket.

    Args:
        base_url: the OpenAI-compatible base URL.
        model: the model to ask.
        timeout_s: curl's ``--max-time``.

    Returns:
        A shell command over four lines.
    """
    body = json.dumps({"model": model, **CHAT_PROBE}, ensure_ascii=False)
    url = shlex.quote(chat_url(endpoint_label(base_url)))
    return (
        f"curl -sS --max-time {timeout_s:g} {url} \\\n"
        '  -H "Authorization: Bearer $DASHSCOPE_API_KEY" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )


def http_problem(status: int, body: str, what: str) -> tuple[Status, str, str]:
    """(status, found, fix) for a non-2xx answer to ``what`` (``GET /models`` or the chat).

    401/403 is ``key rejected``; 404, 405 and 501 ``wrong base URL or model``;
    ``insufficient_quota`` out of credit; another 429 only a WARN (the key and URL work).
    """
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
    return ("FAIL", f"{what} was refused ({said})", "see the server's message")


def _server_message(body: str) -> str:
    """The error code and message of an OpenAI-style error body (or its first words)."""
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:160]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or ""
        return f"{code} {error.get('message') or ''}".strip()[:200]
    return str(error)[:200]


def _in_thread(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` with a deadline (for calls that take no timeout, like getaddrinfo)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=timeout_s)
    finally:
        pool.shutdown(wait=False)


class _StageFailed(Exception):
    """A stage found a problem that ends the chain for this region."""

    def __init__(self, found: str, fix: str, status: Status | None = None) -> None:
        super().__init__(found)
        self.found, self.fix, self.status = found, fix, status


class _Probe:
    """One region's chain of stages; each stage returns its ``Check`` or raises _StageFailed."""

    def __init__(
        self, base_url: str, *, model: str, api_key: str | None, timeout_s: float, role: str
    ) -> None:
        self.label = endpoint_label(base_url)
        parts = urlsplit(self.label)
        self.scheme, self.host = parts.scheme, parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.model, self.api_key, self.timeout_s = model, api_key, timeout_s
        self.bad: Status = "FAIL" if role == "primary" else "WARN"
        self.prefix = f"llm {role} {self.host}:{self.port}"
        self.address = ""
        self.sock: socket.socket | None = None
        self.models_status: int | None = None

    def check(self, stage: str, status: Status, found: str, fix: str = "", **details: Any) -> Check:
        return Check(f"{self.prefix} {stage}", status, found, fix, details)

    def run(self) -> list[Check]:
        stages: tuple[tuple[str, Callable[[], Check | None]], ...] = (
            ("url", self.url), ("dns", self.dns), ("tcp", self.tcp), ("tls", self.tls),
            ("GET /models", self.models), ("chat", self.chat),
        )  # fmt: skip
        checks: list[Check] = []
        try:
            for stage, run in stages:
                try:
                    if (found := run()) is not None:
                        checks.append(found)
                except _StageFailed as exc:
                    status = exc.status or self.bad
                    checks.append(
                        self.check(stage, status, exc.found, exc.fix, endpoint=self.label)
                    )
                    break
        finally:
            if self.sock is not None:
                self.sock.close()
        return checks

    def url(self) -> None:
        if self.scheme not in ("http", "https") or not self.host:
            raise _StageFailed(f"{self.label!r} is not an http(s) URL", f"e.g. {DASHSCOPE_BEIJING}")

    def dns(self) -> Check:
        started = time.perf_counter()
        try:
            infos = _in_thread(
                lambda: socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM),
                self.timeout_s,
            )
        except concurrent.futures.TimeoutError:
            raise _StageFailed(
                f"no DNS answer for {self.host} within {self.timeout_s:g} s",
                "check the resolver (/etc/resolv.conf)",
            ) from None
        except OSError as exc:
            raise _StageFailed(
                f"{self.host} does not resolve: {exc}",
                "check the host name in NARRATE_LLM_BASE_URL, and DNS (/etc/resolv.conf)",
            ) from None
        self.address = str(infos[0][4][0])
        took = ms(time.perf_counter() - started)
        return self.check("dns", "OK", f"{self.host} -> {self.address} in {took} ms")

    def tcp(self) -> Check:
        started = time.perf_counter()
        where = f"{self.address}:{self.port}"
        try:
            self.sock = socket.create_connection((self.address, self.port), self.timeout_s)
        except TimeoutError:
            raise _StageFailed(
                f"no TCP answer from {where} within {self.timeout_s:g} s",
                "a firewall or proxy drops the traffic; set HTTPS_PROXY if one is required",
            ) from None
        except OSError as exc:
            raise _StageFailed(
                f"cannot connect to {where}: {exc.strerror or exc}",
                "is the server running, and is the port right?",
            ) from None
        return self.check(
            "tcp", "OK", f"connected to {where} in {ms(time.perf_counter() - started)} ms"
        )

    def tls(self) -> Check:
        if self.scheme != "https":
            if self.host in ("localhost", "::1") or self.host.startswith("127."):
                return self.check("tls", "OK", "plain HTTP on loopback")
            return self.check(
                "tls", "WARN", "plain HTTP: the key crosses the network unencrypted",
                "use an https:// base URL",
            )  # fmt: skip
        import httpx

        assert self.sock is not None
        started = time.perf_counter()
        try:
            context = httpx.create_ssl_context()  # the CA bundle narrate's client uses
            with context.wrap_socket(self.sock, server_hostname=self.host) as tls:
                version, cipher = tls.version() or "?", (tls.cipher() or ("?",))[0]
                cert = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as exc:
            raise _StageFailed(
                f"certificate not trusted: {exc.verify_message}",
                "a proxy that intercepts TLS? point SSL_CERT_FILE at its CA bundle",
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise _StageFailed(
                f"TLS handshake failed: {exc}", "check the URL's scheme and port"
            ) from None
        found = f"{version} {cipher} in {ms(time.perf_counter() - started)} ms"
        status: Status = "OK"
        fix = ""
        if "notAfter" in cert:
            days = (ssl.cert_time_to_seconds(str(cert["notAfter"])) - time.time()) / 86400
            found += f", certificate valid {days:.0f} more days"
            if days < 14:
                status, fix = "WARN", "the server's certificate expires soon"
        if version in ("TLSv1", "TLSv1.1"):
            status, fix = "WARN", "the server offers only an outdated TLS version"
        return self.check("tls", status, found, fix, version=version)

    def _request(self, method: str, url: str, **kwargs: Any) -> tuple[Any, int]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=self.timeout_s, headers=headers) as client:
                answer = client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise _StageFailed(f"no answer within {self.timeout_s:g} s", SLOW_FIX) from None
        except httpx.HTTPError as exc:
            raise _StageFailed(
                f"{type(exc).__name__}: {exc}", "check NARRATE_LLM_BASE_URL"
            ) from None
        return answer, ms(time.perf_counter() - started)

    def models(self) -> Check:
        answer, took = self._request("GET", self.label + "/models")
        self.models_status = answer.status_code
        if answer.status_code in (401, 403):
            _, found, fix = http_problem(answer.status_code, answer.text, "GET /models")
            raise _StageFailed(found, fix)
        if not answer.is_success:
            found = f"HTTP {answer.status_code} in {took} ms (not every server lists models)"
            return self.check("GET /models", "WARN", found, "the chat call below decides")
        ids = _model_ids(answer)
        if ids and self.model not in ids:
            found = (
                f"HTTP 200 in {took} ms, but {self.model!r} is not listed ({', '.join(ids[:6])})"
            )
            return self.check(
                "GET /models", "WARN", found, "set NARRATE_LLM_MODEL to a listed model"
            )
        return self.check("GET /models", "OK", f"HTTP 200 in {took} ms, {len(ids)} models")

    def chat(self) -> Check:
        answer, took = self._request(
            "POST", chat_url(self.label), json={"model": self.model, **CHAT_PROBE}
        )
        details = {"endpoint": self.label, "http_status": answer.status_code, "latency_ms": took,
                   "models_status": self.models_status}  # fmt: skip
        if answer.is_success:
            return self.check("chat", "OK", f"{self.model}: HTTP 200 in {took} ms", **details)
        what = f"the chat call to {self.model}"
        status, found, fix = http_problem(answer.status_code, answer.text, what)
        status = self.bad if status == "FAIL" else status
        return self.check("chat", status, f"{found}; {took} ms", fix, **details)


def _model_ids(answer: Any) -> list[str]:
    try:
        data = answer.json().get("data") or []
    except (ValueError, AttributeError):
        return []
    return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]


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
    probe = _Probe(base_url, model=model, api_key=api_key, timeout_s=timeout_s, role=role)
    return probe.run()


def check_llm(settings: Settings, timeout_s: float = 10.0) -> list[Check]:
    """The key, then every region (the base URL, then each backup URL), probed in parallel.

    Args:
        settings: narrate's settings; ``settings.llm`` is read.
        timeout_s: per network stage.

    Returns:
        The key's check, then each region's stage checks in order.
    """
    llm = settings.llm
    if llm.backend == "offline":  # chosen: nothing to fix
        return [
            Check(
                "llm",
                "OK",
                "offline describer chosen (NARRATE_LLM_BACKEND=offline): descriptions are "
                "built from the OCR text and image features, no LLM is called",
            )
        ]
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
    if key is not None:
        checks = [Check("llm key", "OK", f"set ({len(key)} characters, not shown)")]
    else:
        hosted = any("aliyuncs.com" in url for url in llm.endpoints)
        why = " (Model Studio needs one)" if hosted else " (fine for a local server)"
        checks = [
            Check(
                "llm key", "FAIL" if hosted else "WARN", "no API key set" + why,
                "export DASHSCOPE_API_KEY=sk-... (or NARRATE_LLM_API_KEY)",
            )
        ]  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(llm.endpoints))) as pool:
        futures = [
            pool.submit(
                check_endpoint, url, model=llm.model, api_key=key, timeout_s=timeout_s,
                role="primary" if i == 0 else "backup",
            )
            for i, url in enumerate(llm.endpoints)
        ]  # fmt: skip
        for future in futures:
            checks += future.result()
    return checks
