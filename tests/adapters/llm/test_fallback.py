"""FallbackDescriber and build_describer: a description always comes back when `offline` is last."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.errors import InputError, PermanentError
from adapters.llm.base import Describer, DescriptionRequest
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat_describer import ChatDescriber
from adapters.llm.fallback import FallbackDescriber
from adapters.llm.offline import OfflineDescriber
from narrate.config.settings import LLMSettings
from narrate.pipeline.steps import build_describer
from tests.adapters.llm.test_describer_contract import DescriberContract
from tests.support.fake_llm import FakeLLMServer

Factory = Callable[..., FakeLLMServer]
SIGN = DescriptionRequest(
    ocr_text="CITY MUSEUM\nOpen 9am to 5pm", language="en", features_summary="a blue sign"
)


def settings(*servers: FakeLLMServer, **kwargs: object) -> LLMSettings:
    """LLM settings for ``servers`` (first = primary) with test-sized delays."""
    values: dict[str, object] = {
        "backend": "openai",
        "base_url": servers[0].base_url,
        "backup_base_urls": ",".join(s.base_url for s in servers[1:]),
        "timeout_s": 5.0,
        "retry_base_s": 0.05,
        "retry_cap_s": 0.2,
        "qps": 0,
    }
    values.update(kwargs)
    return LLMSettings(**values)  # type: ignore[arg-type]


class TestFallbackDescriberContract(DescriberContract):
    @pytest.fixture
    def describer(self, fake_llm: FakeLLMServer) -> Iterator[Describer]:
        fake_llm.script("503", "stream-cut:2")
        yield build_describer(settings(fake_llm, fallback_models="offline", stream=True))


def test_everything_failing_with_offline_last_gives_the_offline_description(
    fake_llm_factory: Factory,
) -> None:
    primary = fake_llm_factory(default="503")
    backup = fake_llm_factory(default="503")
    describer = build_describer(
        settings(primary, backup, fallback_models="qwen-plus,offline", max_retries=1)
    )
    result = describer.describe(SIGN)

    assert result.offline and result.backend == "offline" and result.model == "offline"
    assert "CITY MUSEUM" in result.text
    assert result.fallback_from == ("qwen3-max", "qwen-plus")
    assert result.endpoints_tried == (primary.base_url, backup.base_url)
    sent = primary.requests + backup.requests
    assert {r.body["model"] for r in sent} == {"qwen3-max", "qwen-plus"}
    assert result.attempts == len(sent) + 1  # every HTTP attempt plus the offline answer


def test_out_of_credit_sends_one_request_then_answers_offline(fake_llm: FakeLLMServer) -> None:
    fake_llm.default = "insufficient_quota"
    describer = build_describer(settings(fake_llm, fallback_models="qwen-plus,offline"))
    result = describer.describe(SIGN)

    assert len(fake_llm.requests) == 1
    assert result.offline and "CITY MUSEUM" in result.text
    assert result.fallback_from == ("qwen3-max",) and result.attempts == 2


def test_without_offline_the_actionable_error_surfaces(fake_llm: FakeLLMServer) -> None:
    fake_llm.default = "insufficient_quota"
    describer = build_describer(settings(fake_llm, fallback_models="qwen-plus"))
    with pytest.raises(PermanentError, match="top up"):
        describer.describe(SIGN)
    assert len(fake_llm.requests) == 1


def test_a_chat_answer_carries_the_call_accounting(fake_llm_factory: Factory) -> None:
    primary = fake_llm_factory(script=["503"])
    backup = fake_llm_factory(script=["429-ms:20"], reply="A blue City Museum sign: open 9 to 5.")
    describer = build_describer(settings(primary, backup, stream=True, fallback_models="offline"))
    result = describer.describe(SIGN)

    assert not result.offline and result.backend == "openai"
    assert result.text == "A blue City Museum sign: open 9 to 5."
    assert "CITY MUSEUM" in backup.requests[-1].user_text
    assert result.endpoint == backup.base_url
    assert result.endpoints_tried == (primary.base_url, backup.base_url)
    assert result.attempts == 3 and result.fallback_from == ()
    assert result.ttft_s is not None and result.usage.completion_tokens > 0
    assert all(r.body["stream"] is True for r in primary.requests + backup.requests)


def test_bad_input_is_not_hidden_by_the_fallback(fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    describer = build_describer(
        settings(fake_llm, model="qwen3-vl-plus", fallback_models="offline")
    )
    missing = tmp_path / "missing.png"
    request = DescriptionRequest(
        ocr_text="hi", language="en", features_summary="x", image_path=missing
    )
    with pytest.raises(InputError, match=r"missing\.png"):
        describer.describe(request)
    assert fake_llm.requests == []


def test_build_describer_reuses_one_client_per_settings(fake_llm: FakeLLMServer) -> None:
    first = build_describer(settings(fake_llm, fallback_models="offline"))
    again = build_describer(settings(fake_llm, fallback_models="offline"))
    other = build_describer(settings(fake_llm, qps=3))

    assert first is again and first is not other
    assert isinstance(first, FallbackDescriber) and len(first.describers) == 2
    chat = first.describers[0]
    assert isinstance(chat, ChatDescriber) and isinstance(chat.client, ResilientChatClient)
    assert isinstance(first.describers[1], OfflineDescriber)
    assert isinstance(other, FallbackDescriber) and len(other.describers) == 1


def test_resilience_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARRATE_LLM_BASE_URL", "http://primary/v1/")
    monkeypatch.setenv("NARRATE_LLM_BACKUP_BASE_URLS", "http://sg/v1, http://us/v1,")
    monkeypatch.setenv("NARRATE_LLM_FALLBACK_MODELS", "qwen-plus, offline")
    monkeypatch.setenv("NARRATE_LLM_QPS", "2.5")
    monkeypatch.setenv("NARRATE_LLM_BURST", "4")
    monkeypatch.setenv("NARRATE_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("NARRATE_LLM_DEADLINE", "30")
    monkeypatch.setenv("NARRATE_LLM_STREAM", "true")
    llm = LLMSettings()

    assert llm.endpoints == ("http://primary/v1", "http://sg/v1", "http://us/v1")
    assert llm.fallback_model_list == ("qwen-plus", "offline")
    assert (llm.qps, llm.burst, llm.max_retries, llm.deadline_s, llm.stream) == (
        2.5,
        4,
        1,
        30.0,
        True,
    )
    describer = build_describer(llm)
    assert isinstance(describer, FallbackDescriber)
    client = describer.describers[0].client  # type: ignore[attr-defined]
    assert client.endpoints == llm.endpoints and client.fallback_models == ("qwen-plus",)
