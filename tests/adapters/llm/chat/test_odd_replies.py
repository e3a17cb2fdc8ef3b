"""Replies real servers and gateways send (each from a public bug report), on loopback.

Each test runs a real HTTP server that misbehaves in one way and asserts both what the
caller got (text, marks, message) and what the server received (request counts, bodies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from adapters.errors import TransientError
from adapters.llm.chat.errors import (
    ChatError,
    ContextLengthError,
    EndpointNotFoundError,
    LLMExhaustedError,
    ModelNotFoundError,
)
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import ChatMessage, ChatRequest
from adapters.llm.chat.wire import OpenAICompatClient
from tests.support.fake_llm import FakeLLMServer

Factory = Callable[..., FakeLLMServer]
QUESTION = "Describe the receipt from the bakery on the corner of the harbour road"
REQUEST = ChatRequest(messages=(ChatMessage("user", QUESTION),), max_tokens=400)
STREAM = ChatRequest(messages=REQUEST.messages, max_tokens=400, stream=True)
ANSWER = (
    "The receipt is from Harbour Bakery. It lists two coffees and a scone. "
    "The total is 7.20 and it was paid by card."
)


def client_for(*servers: FakeLLMServer, **kwargs: Any) -> ResilientChatClient:
    policy = {"timeout_s": 5.0, "retry_base_s": 0.01, "retry_cap_s": 0.05, "qps": 0}
    policy.update({k: kwargs.pop(k) for k in list(kwargs) if k in ResiliencePolicy.__annotations__})
    return ResilientChatClient(
        endpoints=[s.base_url for s in servers], policy=ResiliencePolicy(**policy), **kwargs
    )


def test_an_error_object_in_a_200_falls_back_to_the_next_model_at_once(
    fake_llm: FakeLLMServer,
) -> None:
    fake_llm.script("error-200")  # {"object": "error", "message": "The model ... does not exist."}
    with client_for(fake_llm, fallback_models=["qwen-plus"]) as client:
        result = client.complete(REQUEST)

    assert [r.body["model"] for r in fake_llm.requests] == ["qwen3-max", "qwen-plus"]
    assert result.model == "qwen-plus" and result.fallback_from == ("qwen3-max",)


def test_an_error_object_in_a_200_keeps_the_servers_message(fake_llm: FakeLLMServer) -> None:
    fake_llm.default = "error-200"
    with client_for(fake_llm) as client, pytest.raises(ModelNotFoundError) as caught:
        client.complete(REQUEST)

    assert len(fake_llm.requests) == 1  # not retried five times
    assert "The model `qwen3-max` does not exist." in str(caught.value)
    assert caught.value.status_code == 404


def test_a_codeless_error_object_is_retried_with_its_message(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("error-200:0", "error-200:0")
    with client_for(fake_llm) as client:
        result = client.complete(REQUEST)
    assert len(fake_llm.requests) == 3 and result.text.startswith("This is a fake answer")

    fake_llm.clear()
    fake_llm.default = "error-200:0"
    with client_for(fake_llm, max_retries=1) as client, pytest.raises(LLMExhaustedError) as err:
        client.complete(REQUEST)
    assert "The server is busy." in str(err.value)


@pytest.mark.parametrize("stream", [False, True])
def test_a_gateway_html_page_becomes_one_line(fake_llm: FakeLLMServer, stream: bool) -> None:
    fake_llm.default = "html-502"
    client = client_for(fake_llm, max_retries=1)
    with client, pytest.raises(TransientError) as caught:
        client.complete(STREAM if stream else REQUEST)

    message = str(caught.value)
    assert "HTTP 502 Bad Gateway" in message
    assert "\n" not in message and "<" not in message and "nginx" not in message
    assert len(fake_llm.requests) == 2


def test_an_html_page_with_status_200_names_its_title(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("html-200")
    wire = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    with pytest.raises(TransientError) as caught:
        wire.complete(REQUEST)
    assert 'page "Sign in to the guest network"' in str(caught.value)
    assert "<" not in str(caught.value)


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_marks_the_result_filtered(fake_llm: FakeLLMServer, stream: bool) -> None:
    fake_llm.reply = ANSWER
    fake_llm.script("filter:7")
    with client_for(fake_llm) as client:
        result = client.complete(STREAM if stream else REQUEST)

    assert result.filtered and not result.truncated
    assert result.finish_reason == "content_filter"
    assert result.text == "The receipt is from Harbour Bakery. It "
    assert len(fake_llm.requests) == 1  # withheld is an answer, not a fault to retry


@pytest.mark.parametrize("fault", ["null-finish:7", "done-no-finish:7"])
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_ending_without_a_finish_reason_is_continued(
    fake_llm: FakeLLMServer, fault: str, stream: bool
) -> None:
    fake_llm.reply = ANSWER
    fake_llm.script(fault)
    deltas: list[str] = []
    with client_for(fake_llm) as client:
        if stream:
            result = client.stream(REQUEST, on_delta=deltas.append)
        else:
            result = client.complete(REQUEST)

    assert result.text == ANSWER and not result.truncated and result.finish_reason == "stop"
    assert len(fake_llm.requests) == 2 and result.continuations == 1
    continuation = fake_llm.requests[1].body["messages"]
    assert continuation[-2] == {
        "role": "assistant",
        "content": "The receipt is from Harbour Bakery. It ",
    }
    if stream:
        assert "".join(deltas) == ANSWER


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\u2029", "\x1c"])
def test_line_separators_inside_a_delta_are_text(fake_llm_factory: Factory, separator: str) -> None:
    reply = f"First line{separator}second line, same paragraph."
    server = fake_llm_factory(reply=reply)
    wire = OpenAICompatClient(base_url=server.base_url, timeout_s=5)
    deltas: list[str] = []

    result = wire.stream(REQUEST, on_delta=deltas.append)

    assert result.text == reply == "".join(deltas) and result.finish_reason == "stop"


def test_an_event_stream_for_a_plain_request_is_read_as_a_stream(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("sse-for-plain")
    with client_for(fake_llm) as client:
        result = client.complete(REQUEST)

    assert fake_llm.requests[0].body["stream"] is False and len(fake_llm.requests) == 1
    assert result.text == fake_llm.answer_text(fake_llm.requests[0].body)


@pytest.mark.parametrize("stream", [False, True])
def test_a_server_that_ignores_continuations_restarts_and_nothing_repeats(
    fake_llm_factory: Factory, stream: bool
) -> None:
    """llama.cpp starts a fresh answer for a partial or "continue" request."""
    server = fake_llm_factory(reply=ANSWER, honours_partial=False, honours_continue=False)
    server.script("length")
    deltas: list[str] = []
    with client_for(server, continuation="partial") as client:
        result = (
            client.stream(REQUEST, on_delta=deltas.append) if stream else client.complete(REQUEST)
        )

    assert result.text == ANSWER and not result.truncated
    if stream:
        assert "".join(deltas) == ANSWER
    assert server.requests[1].body["messages"][-1]["partial"] is True

    server.clear()
    server.script("length")
    with client_for(server, continuation="auto") as client:  # portable on a non-Model Studio host
        assert client.complete(REQUEST).text == ANSWER
    assert server.requests[1].body["messages"][-1]["role"] == "user"


def test_a_portable_continuation_is_joined_at_a_word_boundary(fake_llm_factory: Factory) -> None:
    server = fake_llm_factory(reply=ANSWER)  # the rest comes without its leading space
    server.script("length")
    with client_for(server, continuation="portable") as client:
        result = client.complete(REQUEST)
    assert result.text == ANSWER and result.continuations == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_continuation_over_the_context_keeps_the_text_marked_truncated(
    fake_llm_factory: Factory, stream: bool
) -> None:
    server = fake_llm_factory(reply=ANSWER, context_chars=len(QUESTION) + 20)
    server.script("length")
    with client_for(server) as client:
        result = client.complete(STREAM if stream else REQUEST)

    assert result.truncated and not result.filtered
    half = "".join(server.requests[0].body["messages"][0]["content"])  # the question
    assert half == QUESTION
    assert result.text == "The receipt is from Harbour Bakery."  # cut at a sentence
    bodies = [r.body for r in server.requests]
    if stream:  # llama.cpp: an empty 200 stream, then the plain request says why
        assert [b["stream"] for b in bodies] == [True, True, False]
    else:
        assert len(bodies) == 2


def test_a_streamed_prompt_over_the_context_gets_the_servers_message(
    fake_llm_factory: Factory,
) -> None:
    server = fake_llm_factory(context_chars=10)
    with client_for(server) as client, pytest.raises(ContextLengthError) as caught:
        client.complete(STREAM)

    assert "exceed context window" in str(caught.value)
    assert [r.body["stream"] for r in server.requests] == [True, False]


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_unknown_when_the_server_sends_none(
    fake_llm_factory: Factory, stream: bool
) -> None:
    server = fake_llm_factory(send_usage=False)
    with client_for(server) as client:
        result = client.complete(STREAM if stream else REQUEST)
    assert result.usage is None and result.text


def test_the_model_the_server_reports_is_the_one_recorded(
    fake_llm_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server = fake_llm_factory(served_model="qwen2.5-0.5b-instruct-q4_k_m")
    with caplog.at_level(logging.WARNING, "narrate.llm"), client_for(server) as client:
        result = client.complete(REQUEST)
        client.complete(REQUEST)

    assert result.model == "qwen2.5-0.5b-instruct-q4_k_m" and result.requested_model == "qwen3-max"
    assert result.http_version == "HTTP/1.1"
    assert caplog.text.count("answered as qwen2.5-0.5b-instruct-q4_k_m") == 1  # warned once


def test_a_base_url_without_v1_is_not_taken_for_a_missing_model(
    fake_llm: FakeLLMServer,
) -> None:
    root = fake_llm.base_url.removesuffix("/v1")
    client = ResilientChatClient(
        endpoints=[root], fallback_models=["qwen-plus"], policy=ResiliencePolicy(qps=0)
    )
    with client, pytest.raises(EndpointNotFoundError) as caught:
        client.complete(REQUEST)

    assert len(fake_llm.requests) == 1  # not once per fallback model
    assert f"try {root}/v1" in str(caught.value)
    assert isinstance(caught.value, ChatError) and caught.value.status_code == 404
