"""The operator's guarantees end to end: response cache, audit log, PII, secrets, and what
the LLM server said (a withheld answer, unknown usage) reaching the result and the JSON.

Every test runs the real pipeline (tesseract, espeak-ng) against fake OpenAI-compatible
servers on loopback and asserts on what those servers received and what was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.llm.chat.ratelimit import RedisTokenBucket
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat_describer import ChatDescriber
from assets import SAMPLES_DIR
from narrate.config.settings import load_settings
from narrate.ops.llm import _make_limiter, build_describer, forget_describers
from narrate.pipeline.sequence import answer_one, describe_one, plain_steps
from tests.support.fake_llm import FakeLLMServer

RECEIPT = SAMPLES_DIR / "receipt_en.png"
CANARY = "sk-canary-7f3a9c1e5b2d4f60a8e1"


def chat_requests(server: FakeLLMServer) -> list:
    """The chat-completion requests a fake server received."""
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def audit_lines(directory: Path) -> list[dict]:
    """Every record in every audit file, in file order (each line must be valid JSON)."""
    records = []
    for path in sorted(directory.glob("audit-*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    return records


def describe(out_dir: Path, image: Path = RECEIPT):  # type: ignore[no-untyped-def]
    """One image through the direct engine with the current environment."""
    return describe_one(
        image, out_dir=out_dir, lang="auto", settings=load_settings(), steps=plain_steps()
    )


# ------------------------------------------------------------------------ response cache


def test_second_identical_run_sends_nothing(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None], tmp_path: Path
) -> None:
    llm_env(fake_llm)
    first = describe(tmp_path / "one")
    second = describe(tmp_path / "two")

    assert len(chat_requests(fake_llm)) == 1
    assert "CORNER CAFE" in chat_requests(fake_llm)[0].user_text
    assert first.description == second.description
    assert (first.cached, second.cached) == (False, True)
    records = audit_lines(tmp_path / "audit")
    assert [(r["cache_hit"], r["outcome"]) for r in records] == [
        (False, "ok"),
        (True, "cache_hit"),
    ]
    assert records[0]["messages_sha256"] == records[1]["messages_sha256"]


def test_cache_expires_after_its_ttl(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None], tmp_path: Path
) -> None:
    llm_env(fake_llm, NARRATE_CACHE_TTL="0.5")
    describe(tmp_path)
    time.sleep(0.7)
    again = describe(tmp_path)
    assert len(chat_requests(fake_llm)) == 2 and not again.cached


def test_redis_backend_serves_the_second_run(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None], tmp_path: Path, redis_url: str
) -> None:
    llm_env(fake_llm, REDIS_URL=redis_url, NARRATE_CACHE_BACKEND="redis")
    describe(tmp_path)
    forget_describers()  # a new process would build its describer anew: Redis still has it
    second = describe(tmp_path)
    assert len(chat_requests(fake_llm)) == 1 and second.cached


def test_changed_parameters_miss_the_cache(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None], tmp_path: Path
) -> None:
    llm_env(fake_llm)
    describe(tmp_path)
    llm_env(fake_llm, NARRATE_LLM_TEMPERATURE="0.9")
    describe(tmp_path)
    bodies = [r.body for r in chat_requests(fake_llm)]
    assert [b["temperature"] for b in bodies] == [0.3, 0.9]


# ------------------------------------------------------------------------ audit log


def test_audit_has_every_attempt_in_order(
    fake_llm_factory: Callable[..., FakeLLMServer],
    llm_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    primary = fake_llm_factory(script=["503"])
    backup = fake_llm_factory(script=["429-ms:50", "ok"])
    llm_env(primary, backup, NARRATE_LLM_API_KEY=CANARY)
    result = describe(tmp_path)

    records = audit_lines(tmp_path / "audit")
    assert [(r["endpoint"], r["status"], r["attempt"]) for r in records] == [
        (primary.base_url, 503, 1),
        (backup.base_url, 429, 2),
        (backup.base_url, 200, 3),
    ]
    assert [r["outcome"] for r in records] == ["transient", "transient", "ok"]
    assert records[-1]["tokens"]["total"] > 0
    assert records[-1]["parameters"]["temperature"] == 0.3
    assert all("messages" not in r and len(r["messages_sha256"]) == 64 for r in records)
    assert result.attempts == 3 and result.endpoint == backup.base_url
    text = "".join(p.read_text() for p in (tmp_path / "audit").iterdir())
    assert CANARY not in text


# ------------------------------------------------------------------------ PII


PII = {
    "email": "liwei88@example.com",
    "phone": "138 1234 5678",
    "id": "11010519491231002X",
    "card": "4111 1111 1111 1111",
    "ip": "192.168.10.24",
}


def pii_image(path: Path) -> Path:
    """A form-like image full of personal data, rendered large enough to OCR."""
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 30)
    lines = [
        "MEMBERSHIP FORM",
        f"Email: {PII['email']}",
        f"Phone: {PII['phone']}",
        f"ID: {PII['id']}",
        f"Card: {PII['card']}",
        f"Server: {PII['ip']}",
    ]
    image = Image.new("RGB", (900, 70 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((40, 30 + 60 * number), line, fill="black", font=font)
    image.save(path)
    return path


def test_no_personal_data_reaches_the_api(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None], tmp_path: Path
) -> None:
    llm_env(fake_llm, NARRATE_ANONYMIZE="1", NARRATE_LLM_MODEL="qwen3-vl-plus")
    image = pii_image(tmp_path / "form.png")
    question = f"Is {PII['email']} the same person as the one at {PII['phone']}?"
    result = answer_one(
        image, question_text=question, out_dir=tmp_path, lang="en",
        settings=load_settings(), steps=plain_steps(),
    )  # fmt: skip

    assert PII["email"] in result.ocr_text  # OCR really read it: the local result keeps it
    sent = chat_requests(fake_llm)
    assert len(sent) == 1
    raw = sent[0].raw.decode()
    for value in (*PII.values(), PII["phone"].replace(" ", ""), PII["card"].replace(" ", "")):
        assert value not in raw, value
    body = json.dumps(sent[0].body)
    for placeholder in ("[EMAIL_1]", "[PHONE_1]", "[CN_ID_1]", "[BANK_CARD_1]", "[IP_1]"):
        assert placeholder in body, placeholder
    assert sent[0].image_urls == []  # a vision model would see the text: the image stays
    # the fake model echoes the question's opening words; the answer restores them locally
    assert PII["email"] in result.answer and "[EMAIL_1]" not in result.answer


# ------------------------------------------------------------------------ secrets


def test_the_key_never_leaves_through_outputs_logs_or_audit(
    fake_llm_factory: Callable[..., FakeLLMServer], tmp_path: Path
) -> None:
    good = fake_llm_factory(api_key=CANARY)
    out, audit = tmp_path / "out", tmp_path / "audit"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    env = {
        **os.environ,
        "NARRATE_LLM_BACKEND": "openai",
        "NARRATE_LLM_BASE_URL": good.base_url,
        "DASHSCOPE_API_KEY": CANARY,
        "NARRATE_AUDIT_DIR": str(audit),
        "NARRATE_AUDIT_INCLUDE_MESSAGES": "1",
        "NARRATE_CACHE_BACKEND": "sqlite",
        "NARRATE_CACHE_PATH": str(tmp_path / "cache.sqlite3"),
        "NARRATE_LLM_MAX_RETRIES": "0",
    }

    def cli(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "narrate.cli.main", "describe", "--debug", *args],
            env={**env, **overrides},
            capture_output=True,
            text=True,
            timeout=300,
        )

    runs = [
        cli(str(RECEIPT), str(bad), "--out", str(out)),
        cli(str(RECEIPT), str(bad), "--out", str(out), "--json"),
        # a wrong key: the server answers 401 and echoes the key it got in its message
        cli(
            str(RECEIPT),
            "--out",
            str(tmp_path / "out2"),
            DASHSCOPE_API_KEY=CANARY + "-wrong",
            NARRATE_CACHE_BACKEND="off",
        ),
    ]

    assert chat_requests(good)[0].headers["authorization"] == f"Bearer {CANARY}"  # it was used
    assert "401" in runs[2].stderr or "API key" in runs[2].stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".sqlite3"]
    assert any(p.suffix == ".jsonl" for p in files) and any(p.suffix == ".json" for p in files)
    for run in runs:
        assert CANARY not in run.stdout and CANARY not in run.stderr
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_the_key_never_reaches_prefect_logs_or_artifacts(
    prefect_harness: None,
    fake_llm_factory: Callable[..., FakeLLMServer],
    llm_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.image_to_speech import image_to_speech

    primary = fake_llm_factory(api_key=CANARY, script=["503"])  # a logged failover
    backup = fake_llm_factory(api_key=CANARY)
    llm_env(primary, backup, DASHSCOPE_API_KEY=CANARY)
    state = image_to_speech(RECEIPT, out_dir=tmp_path, return_state=True)
    assert state.is_completed()
    run_id = state.state_details.flow_run_id

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    with get_client(sync_client=True) as client:
        for _ in range(50):  # run logs are shipped in batches: wait for the retry warning
            logs = client.read_logs(log_filter=log_filter)
            if any("failover" in log.message for log in logs):
                break
            time.sleep(0.2)
        artifacts = client.read_artifacts()
        run = client.read_flow_run(run_id)
    assert len(chat_requests(primary)) == len(chat_requests(backup)) == 1
    assert any("failover" in log.message for log in logs) and artifacts
    seen = [log.message for log in logs] + [json.dumps(a.data) for a in artifacts]
    seen.append(json.dumps(run.parameters))
    assert not [text for text in seen if CANARY in text]


@pytest.mark.slow
def test_the_key_can_come_from_a_prefect_secret_block(
    prefect_harness: None,
    fake_llm_factory: Callable[..., FakeLLMServer],
    llm_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    from prefect.blocks.system import Secret

    from flows.image_to_speech import image_to_speech

    Secret(value=CANARY).save("narrate-test-key", overwrite=True)
    server = fake_llm_factory(api_key=CANARY)  # answers 401 to any other key
    llm_env(server, NARRATE_LLM_API_KEY_BLOCK="narrate-test-key")
    result = image_to_speech(RECEIPT, out_dir=tmp_path)

    assert result.backend == "openai"
    assert chat_requests(server)[0].headers["authorization"] == f"Bearer {CANARY}"
    assert CANARY not in (tmp_path / "receipt_en.json").read_text()


# ------------------------------------------------------------- what the server said (issue 13)

ANSWER = "This is a receipt from Harbour Bakery. It lists two coffees and a scone."


@pytest.mark.slow
def test_a_withheld_answer_is_marked_and_announced_in_the_result_and_json(
    fake_llm_factory: Callable[..., FakeLLMServer],
    llm_env: Callable[..., None],
    tmp_path: Path,
) -> None:
    server = fake_llm_factory(reply=ANSWER, send_usage=False)
    server.script("filter:10")
    llm_env(server)

    result = describe_one(RECEIPT, out_dir=tmp_path, lang="auto", settings=load_settings(),
                          steps=plain_steps())  # fmt: skip

    notice = "The rest of the answer was withheld by the provider's content filter."
    assert result.description == f"This is a receipt from Harbour Bakery. {notice}"
    assert result.filtered and result.finish_reason == "content_filter"
    assert result.notice == notice and result.usage is None  # unknown, not 0
    assert result.audio_path.stat().st_size > 1000
    saved = json.loads(result.audio_path.with_suffix(".json").read_text())
    assert saved["filtered"] is True and saved["notice"] == notice and saved["usage"] is None
    assert saved["requested_model"] == "qwen3-max" and saved["http_version"] == "HTTP/1.1"
    audit = [json.loads(line) for p in (tmp_path / "audit").glob("*.jsonl")
             for line in p.read_text().splitlines()]  # fmt: skip
    assert audit and audit[-1]["tokens"] is None


def test_the_describer_is_built_from_the_settings_once(
    fake_llm: FakeLLMServer, llm_env: Callable[..., None]
) -> None:
    llm_env(fake_llm, NARRATE_LLM_VISION="on", NARRATE_LLM_ENABLE_THINKING="false",
            NARRATE_LLM_CONTINUATION="portable", NARRATE_LLM_MAX_RETRIES="7")  # fmt: skip
    settings = load_settings()

    describer = build_describer(settings.llm)

    chat = describer.describers[0]  # type: ignore[attr-defined]
    assert isinstance(chat, ChatDescriber) and isinstance(chat.client, ResilientChatClient)
    assert chat.vision == "on" and chat.enable_thinking is False
    assert chat.client.policy.max_retries == 7 and chat.client.policy.continuation == "portable"
    assert build_describer(settings.llm) is describer


def test_redis_configured_means_one_shared_bucket(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("NARRATE_LLM_QPS", "6")
    limiter = _make_limiter(load_settings().llm)

    assert limiter is not None
    bucket = limiter("qwen3-max")
    assert isinstance(bucket, RedisTokenBucket) and bucket.qps == 6
    assert limiter("qwen3-max") is bucket and limiter("qwen-plus") is not bucket
