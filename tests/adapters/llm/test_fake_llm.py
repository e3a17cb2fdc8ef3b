"""The fake OpenAI-compatible server itself: recording, scripting, random mix, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.fake_llm import FakeLLMServer, check_fault, tokenize

ROOT = Path(__file__).resolve().parents[3]
BODY = {"model": "qwen3-max", "messages": [{"role": "user", "content": "hello fake world"}]}


def _post(server: FakeLLMServer, body: object = BODY) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=5)


def test_records_every_request(fake_llm: FakeLLMServer) -> None:
    response = httpx.post(
        f"{fake_llm.base_url}/chat/completions",
        json=BODY,
        headers={"Authorization": "Bearer sk-x", "X-Trace": "abc"},
        timeout=5,
    )

    assert response.status_code == 200
    (seen,) = fake_llm.requests
    assert seen.method == "POST" and seen.path == "/v1/chat/completions"
    assert seen.headers["x-trace"] == "abc"
    assert seen.body == BODY
    assert json.loads(seen.raw) == BODY
    assert seen.user_text == "hello fake world"
    assert seen.fault == "ok" and seen.time > 0


def test_script_is_consumed_in_order_then_default(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("429,503", "ok", "500")

    codes = [_post(fake_llm).status_code for _ in range(5)]

    assert codes == [429, 503, 200, 500, 200]
    assert [r.fault for r in fake_llm.requests] == ["429", "503", "ok", "500", "ok"]
    assert fake_llm.pending == []


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'teapot'"):
        check_fault("teapot")
    assert check_fault("429:2") == "429:2"


def test_seeded_mix_is_reproducible(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    mix = {"ok": 0.5, "500": 0.3, "429": 0.2}
    runs = []
    for _ in range(2):
        server = fake_llm_factory(mix=mix, seed=7)
        runs.append([_post(server).status_code for _ in range(20)])

    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500, 429}


def test_error_bodies_follow_the_openai_shape(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("insufficient_quota", "429-ms:250")

    quota = _post(fake_llm)
    rate = _post(fake_llm)

    assert quota.status_code == 429
    assert quota.json()["error"]["code"] == "insufficient_quota"
    assert rate.headers["retry-after-ms"] == "250"


def test_models_listing_and_rejected_model(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(reject_models=["qwen3-max"])

    listed = httpx.get(f"{server.base_url}/models", timeout=5).json()
    rejected = _post(server)

    assert "qwen3-max" not in [m["id"] for m in listed["data"]]
    assert "qwen-plus" in [m["id"] for m in listed["data"]]
    assert rejected.status_code == 404
    assert rejected.json()["error"]["code"] == "model_not_found"


def test_vision_request_is_reflected(fake_llm: FakeLLMServer) -> None:
    body = {
        "model": "qwen3-vl-plus",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    }

    answer = _post(fake_llm, body).json()["choices"][0]["message"]["content"]

    assert answer == "This is a fake answer about: what is this. I was shown 1 image."
    assert fake_llm.requests[0].image_urls == ["data:image/jpeg;base64,AAAA"]


def test_tokenize_splits_words_and_cjk() -> None:
    assert tokenize("Hi there. 你好") == ["Hi ", "there. ", "你", "好"]


def test_runnable_from_the_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0", "--script", "503,ok"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        base_url = banner.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        url = f"{base_url}/chat/completions"
        codes = [httpx.post(url, json=BODY, timeout=5).status_code for _ in range(2)]
        assert codes == [503, 200]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
