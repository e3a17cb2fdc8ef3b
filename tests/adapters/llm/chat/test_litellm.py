"""narrate against a real LiteLLM proxy: replies from a server we did not write.

The proxy's models answer with LiteLLM's ``mock_response`` (no upstream); everything on
the wire, its SSE framing, usage, model names, errors and auth, is LiteLLM's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from adapters.llm.base import DescriptionRequest
from adapters.llm.chat.errors import ChatPermanentError
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import ChatMessage, ChatRequest
from adapters.llm.chat_describer import ChatDescriber
from tests.support.litellm_proxy import MASTER_KEY, LiteLLMProxy, litellm_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANSWER = "The receipt is from Harbour Bakery. It lists two coffees and a scone; the total is 7.20."
PLUS = "A short answer from the fallback model."
SEPARATED = "Line one\u2028line two\u0085line three, all in one answer."
REQUEST = ChatRequest(messages=(ChatMessage("user", "Describe the receipt"),), max_tokens=200)


@pytest.fixture(scope="module")
def proxy() -> Iterator[LiteLLMProxy]:
    if litellm_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("litellm is not installed: make setup runs scripts/install_litellm.sh")
        pytest.skip("litellm is not installed (make setup, or scripts/install_litellm.sh DIR)")
    models = {"qwen3-max": ANSWER, "qwen-plus": PLUS, "qwen-flash": SEPARATED}
    with LiteLLMProxy(models) as server:
        yield server


def client(proxy: LiteLLMProxy, **kwargs: object) -> ResilientChatClient:
    return ResilientChatClient(
        endpoints=[proxy.base_url],
        api_key=kwargs.pop("api_key", MASTER_KEY),  # type: ignore[arg-type]
        policy=ResiliencePolicy(qps=0, timeout_s=30, retry_base_s=0.05, max_retries=1),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("stream", [False, True])
def test_plain_and_streamed_answers_come_back_whole(proxy: LiteLLMProxy, stream: bool) -> None:
    deltas: list[str] = []
    with client(proxy) as chat:
        result = chat.stream(REQUEST, on_delta=deltas.append) if stream else chat.complete(REQUEST)

    assert result.text == ANSWER and result.finish_reason == "stop"
    assert not (result.truncated or result.filtered)
    assert result.model == "qwen3-max" and result.http_version == "HTTP/1.1"
    if stream:
        assert "".join(deltas) == ANSWER and len(deltas) > 3  # LiteLLM splits the mock
    else:
        assert result.usage is not None and result.usage.completion_tokens > 0


def test_an_unknown_model_falls_back_to_the_next_at_once(proxy: LiteLLMProxy) -> None:
    with client(proxy, model="qwen3-nope", fallback_models=["qwen-plus"]) as chat:
        result = chat.complete(REQUEST)

    assert result.text == PLUS and result.model == "qwen-plus"
    assert result.fallback_from == ("qwen3-nope",) and result.attempts == 2


def test_a_wrong_key_is_refused_once_with_the_variable_to_check(proxy: LiteLLMProxy) -> None:
    with client(proxy, api_key="sk-wrong-key-000") as chat, pytest.raises(ChatPermanentError) as e:
        chat.complete(REQUEST)

    assert e.value.status_code in (400, 401) and e.value.attempts == 1
    assert "sk-wrong-key-000" not in str(e.value)


def test_the_describer_speaks_the_proxys_answer(proxy: LiteLLMProxy) -> None:
    request = DescriptionRequest(ocr_text="HARBOUR BAKERY\nTOTAL 7.20", language="en",
                                 features_summary="a receipt")  # fmt: skip
    with client(proxy) as chat:
        description = ChatDescriber(chat, stream=True).describe(request, lambda _: None)

    assert description.text == ANSWER and description.backend == "openai"
    assert not description.vision  # the listing says nothing about images: text only


def test_line_separators_in_a_streamed_answer_arrive_as_text(proxy: LiteLLMProxy) -> None:
    deltas: list[str] = []
    with client(proxy, model="qwen-flash") as chat:
        result = chat.stream(REQUEST, on_delta=deltas.append)
    assert result.text == SEPARATED == "".join(deltas) and result.attempts == 1
