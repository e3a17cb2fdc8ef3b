"""OpenAICompatClient: request shape (MockTransport) and behaviour against a real fake server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from adapters.errors import PermanentError, TransientError
from adapters.llm.chat.types import ChatClient, ChatMessage, ChatRequest
from adapters.llm.chat.wire import (
    ChatPermanentError,
    ChatTransientError,
    OpenAICompatClient,
    parse_retry_after,
)
from tests.support.fake_llm import FakeLLMServer

CANARY = "sk-canary-5f3a9c1e7b2d4f60"
MESSAGES = (
    ChatMessage("system", "You describe images."),
    ChatMessage("user", "Receipt from Joe's Cafe with a total of 7.20"),
)


def _request(**kwargs: object) -> ChatRequest:
    return ChatRequest(messages=MESSAGES, **kwargs)  # type: ignore[arg-type]


# -- request shape, with httpx.MockTransport ----------------------------------------------


def _mock_client(
    seen: list[httpx.Request], *, api_key: str | None = None, **kwargs: object
) -> OpenAICompatClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-42",
                "model": "qwen3-max-2025-09-23",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "A receipt."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33},
            },
        )

    return OpenAICompatClient(
        base_url="https://llm.example/compatible-mode/v1/",
        api_key=None if api_key is None else SecretStr(api_key),
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        **kwargs,  # type: ignore[arg-type]
    )


def test_request_shape_with_key() -> None:
    seen: list[httpx.Request] = []
    client = _mock_client(seen, api_key=CANARY, extra_headers={"X-Trace": "t1"})
    typed: ChatClient = client  # mypy checks the conformance
    assert typed is client

    result = client.complete(_request(temperature=0.1, top_p=0.8, max_tokens=123))

    (request,) = seen
    assert request.method == "POST"
    assert request.url == "https://llm.example/compatible-mode/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.headers["X-Trace"] == "t1"
    body = json.loads(request.content)
    assert body == {
        "model": "qwen3-max",
        "messages": [
            {"role": "system", "content": "You describe images."},
            {"role": "user", "content": "Receipt from Joe's Cafe with a total of 7.20"},
        ],
        "temperature": 0.1,
        "top_p": 0.8,
        "max_tokens": 123,
        "stream": False,
    }
    assert result.text == "A receipt."
    assert result.model == "qwen3-max-2025-09-23"  # the model that answered
    assert result.endpoint == "https://llm.example/compatible-mode/v1"
    assert result.request_id == "chatcmpl-42"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 3)
    assert result.usage.total_tokens == 33
    assert result.finish_reason == "stop" and not result.truncated
    assert result.latency_s >= 0


def test_no_authorization_header_without_key_and_model_override() -> None:
    seen: list[httpx.Request] = []
    client = _mock_client(seen, model="qwen-flash")

    client.complete(_request(model="qwen-plus"))
    client.complete(_request())

    assert all("authorization" not in r.headers for r in seen)
    assert [json.loads(r.content)["model"] for r in seen] == ["qwen-plus", "qwen-flash"]


def test_stream_request_asks_for_usage() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        sse = (
            'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
            ": keep-alive comment\n\n"
            'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
            'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}'
            "\n\ndata: [DONE]\n\n"
        )
        return httpx.Response(200, text=sse, headers={"Content-Type": "text/event-stream"})

    client = OpenAICompatClient(
        base_url="http://x/v1", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    result = client.complete(_request(stream=True))

    body = json.loads(seen[0].content)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert result.text == "Hi"
    assert result.model == "m"
    assert result.usage.total_tokens == 6  # computed when the server omits it
    assert result.request_id == "c1"


def test_missing_choices_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "error page"})

    client = OpenAICompatClient(
        base_url="http://x/v1", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(ChatTransientError, match="without any choices"):
        client.complete(_request())


def test_dashscope_native_arrearage_and_bad_request() -> None:
    answers = iter(
        [
            httpx.Response(400, json={"code": "Arrearage", "message": "Access denied: overdue"}),
            httpx.Response(
                400,
                json={"error": {"code": "invalid_parameter", "message": "max_tokens too large"}},
            ),
            httpx.Response(404, json={"error": {"code": "model_not_found", "message": "nope"}}),
        ]
    )
    client = OpenAICompatClient(
        base_url="http://x/v1",
        client=httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))),
    )
    with pytest.raises(ChatPermanentError, match="top up or check billing"):
        client.complete(_request())
    with pytest.raises(ChatPermanentError, match="max_tokens too large") as bad:
        client.complete(_request())
    assert bad.value.status_code == 400 and bad.value.error_code == "invalid_parameter"
    with pytest.raises(ChatPermanentError) as missing:
        client.complete(_request())
    assert missing.value.error_code == "model_not_found"


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": later}, now=now.timestamp()) == 30.0


# -- against the real fake server ---------------------------------------------------------


def test_ok_answer_reflects_what_the_model_saw(fake_llm: FakeLLMServer) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, api_key=CANARY, timeout_s=5)

    result = client.complete(_request())

    assert result.text.startswith("This is a fake answer about: Receipt from Joe's Cafe")
    assert result.model == "qwen3-max"
    assert result.endpoint == fake_llm.base_url
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    (seen,) = fake_llm.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {CANARY}"
    assert seen.body["messages"][1]["content"].startswith("Receipt from")


def test_streaming_deltas_in_order(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(reply="One two three four five.", tokens_per_second=200)
    client = OpenAICompatClient(base_url=server.base_url, timeout_s=5)
    deltas: list[str] = []

    result = client.stream(_request(), on_delta=deltas.append)

    assert deltas == ["One ", "two ", "three ", "four ", "five."]
    assert result.text == "".join(deltas) == "One two three four five."
    assert result.usage.completion_tokens == 5
    assert result.usage.prompt_tokens > 0
    assert result.ttft_s is not None and 0 < result.ttft_s <= result.latency_s
    assert result.finish_reason == "stop" and result.request_id
    assert server.requests[0].body["stream"] is True


def test_complete_streams_when_asked(fake_llm: FakeLLMServer) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)

    streamed = client.complete(_request(stream=True))
    plain = client.complete(_request())

    assert streamed.text == plain.text
    assert streamed.ttft_s is not None and plain.ttft_s is None
    assert [r.body["stream"] for r in fake_llm.requests] == [True, False]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "retry_after_s"),
    [("429:2", 2.0), ("429-ms:1500", 1.5), ("429-bare", None), ("500", None), ("503:3", 3.0)],
)
def test_retryable_status_is_transient_with_retry_after(
    fake_llm: FakeLLMServer, fault: str, retry_after_s: float | None, stream: bool
) -> None:
    fake_llm.script(fault)
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)

    with pytest.raises(TransientError) as caught:
        client.complete(_request(stream=stream))

    assert caught.value.retry_after_s == retry_after_s
    assert isinstance(caught.value, ChatTransientError)
    assert caught.value.status_code == int(fault[:3])


@pytest.mark.parametrize("stream", [False, True])
def test_insufficient_quota_is_permanent(fake_llm: FakeLLMServer, stream: bool) -> None:
    fake_llm.script("insufficient_quota")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)

    with pytest.raises(PermanentError, match="top up or check billing") as caught:
        client.complete(_request(stream=stream))
    assert caught.value.error_code == "insufficient_quota"  # type: ignore[attr-defined]


def test_bad_key_is_permanent_and_names_the_variable(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(api_key="sk-the-right-one")
    client = OpenAICompatClient(base_url=server.base_url, api_key=CANARY, timeout_s=5)

    with pytest.raises(PermanentError, match="DASHSCOPE_API_KEY"):
        client.complete(_request())
    good = OpenAICompatClient(base_url=server.base_url, api_key="sk-the-right-one", timeout_s=5)
    assert good.complete(_request()).text.startswith("This is a fake answer")


def test_unknown_model_is_permanent_404(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(reject_models=["qwen3-max"])
    client = OpenAICompatClient(base_url=server.base_url, timeout_s=5)

    with pytest.raises(ChatPermanentError, match="does not exist") as caught:
        client.complete(_request())
    assert (caught.value.status_code, caught.value.error_code) == (404, "model_not_found")
    assert client.complete(_request(model="qwen-plus")).model == "qwen-plus"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fault", ["reset", "stream-cut", "malformed"])
def test_broken_connections_and_bodies_are_transient(
    fake_llm: FakeLLMServer, fault: str, stream: bool
) -> None:
    fake_llm.script(fault)
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    deltas: list[str] = []

    with pytest.raises(TransientError) as caught:
        client.stream(_request(), on_delta=deltas.append) if stream else client.complete(_request())

    assert fake_llm.base_url in str(caught.value)
    if fault == "stream-cut" and stream:
        assert deltas == ["This ", "is ", "a "]  # what arrived before the cut
    # the same client recovers on the next call
    assert client.complete(_request()).text.startswith("This is a fake answer")


def test_hang_times_out_as_transient(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("hang:3")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=0.5)

    with pytest.raises(TransientError, match=r"timed out after 0\.5 s"):
        client.complete(_request())
    assert [r.fault for r in fake_llm.requests] == ["hang:3"]


@pytest.mark.parametrize("stream", [False, True])
def test_length_marks_truncated(fake_llm_factory, stream: bool) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(reply="alpha beta gamma delta", script=["length"])
    client = OpenAICompatClient(base_url=server.base_url, timeout_s=5)

    result = client.complete(_request(stream=stream))

    assert result.truncated and result.finish_reason == "length"
    assert result.text == "alpha beta "
    assert result.usage.completion_tokens == 2


def test_max_tokens_cuts_the_answer(fake_llm: FakeLLMServer) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)

    result = client.complete(_request(max_tokens=2))

    assert result.text == "This is " and result.truncated
    assert result.usage.completion_tokens == 2


@pytest.mark.parametrize(
    "fault",
    [
        "401",
        "429:2",
        "429-ms:1500",
        "insufficient_quota",
        "500",
        "reset",
        "stream-cut",
        "malformed",
        "hang:3",
    ],
)
def test_key_never_leaks(fake_llm: FakeLLMServer, fault: str) -> None:
    fake_llm.script(fault)
    client = OpenAICompatClient(base_url=fake_llm.base_url, api_key=CANARY, timeout_s=0.5)

    with pytest.raises(Exception) as caught:
        client.complete(_request())

    texts = [str(caught.value), repr(caught.value), repr(client), str(client)]
    cause = caught.value.__cause__
    if cause is not None:
        texts.append(str(cause))
    assert all(CANARY not in t for t in texts)
    assert "api_key=<set>" in repr(client)
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {CANARY}"  # it was sent


def test_server_echoing_the_key_is_scrubbed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {key}"}})

    client = OpenAICompatClient(
        base_url="http://x/v1",
        api_key=CANARY,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(PermanentError) as caught:
        client.complete(_request())
    assert CANARY not in str(caught.value)
    assert "Incorrect API key: ***" in str(caught.value)


def test_connection_refused_is_transient() -> None:
    with FakeLLMServer() as server:
        base_url = server.base_url  # the port is free again once the server stops
    client = OpenAICompatClient(base_url=base_url, timeout_s=2)

    with pytest.raises(TransientError, match="could not connect"):
        client.complete(_request())


def test_official_openai_sdk_talks_to_the_fake(fake_llm: FakeLLMServer) -> None:
    """The fake speaks the real protocol: the official SDK parses its answers and streams."""
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(base_url=fake_llm.base_url, api_key="sk-test", max_retries=0)
    messages = [m.to_dict() for m in MESSAGES]

    answer = sdk.chat.completions.create(model="qwen3-max", messages=messages)
    chunks = list(
        sdk.chat.completions.create(
            model="qwen3-max",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = answer.choices[0].message.content
    assert text.startswith("This is a fake answer about: Receipt")
    assert answer.usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None


# -- replies in the wrong wrapping, with httpx.MockTransport -------------------------------


def _replying(body: bytes, content_type: str) -> OpenAICompatClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    return OpenAICompatClient(
        base_url="https://llm.example/v1",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_an_event_stream_under_a_json_content_type_is_read_as_a_stream() -> None:
    events = [
        {"model": "m", "choices": [{"delta": {"content": "Half "}}]},
        {"model": "m", "choices": [{"delta": {"content": "and half."}, "finish_reason": "stop"}]},
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)
    result = _replying(body + b"data: [DONE]\r\n\r\n", "application/json").complete(_request())
    assert result.text == "Half and half." and result.finish_reason == "stop"


def test_a_json_answer_to_a_streamed_request_is_taken_whole() -> None:
    body = json.dumps(
        {"model": "m", "choices": [{"message": {"content": "Whole."}, "finish_reason": "stop"}]}
    ).encode()
    deltas: list[str] = []
    result = _replying(body, "application/json").stream(_request(), on_delta=deltas.append)
    assert result.text == "Whole." and deltas == ["Whole."] and result.usage is None
