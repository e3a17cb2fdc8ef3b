"""ChatDescriber against the real fake server: prompts sent, vision parts, result fields."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from adapters.errors import InputError, TransientError
from adapters.llm.base import Describer, DescriptionRequest
from adapters.llm.chat.errors import EmptyAnswerError
from adapters.llm.chat.policy import ResiliencePolicy
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.wire import OpenAICompatClient
from adapters.llm.chat_describer import ChatDescriber, ThinkFilter, image_data_url, takes_images
from tests.support.fake_llm import FakeLLMServer


@pytest.fixture
def big_image(tmp_path: Path) -> Path:
    path = tmp_path / "poster.png"
    Image.new("RGB", (2560, 1600), (20, 40, 160)).save(path)
    return path


def _request(image: Path | None = None, question: str | None = None) -> DescriptionRequest:
    return DescriptionRequest(
        ocr_text="JOE'S CAFE\nTOTAL 7.20",
        language="en",
        features_summary="landscape, mostly dark blue",
        question=question,
        image_path=image,
    )


def _data_url_image(url: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


def test_vision_model_gets_the_image(fake_llm: FakeLLMServer, big_image: Path) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, model="qwen3-vl-plus", timeout_s=5)
    describer: Describer = ChatDescriber(client)  # mypy checks the conformance

    result = describer.describe(_request(big_image))

    (seen,) = fake_llm.requests  # the /models listing (a GET) said it takes images
    (url,) = seen.image_urls
    image = _data_url_image(url)
    assert image.format == "JPEG" and image.size == (1280, 800)
    red, _green, blue = image.convert("RGB").getpixel((640, 400))  # type: ignore[misc]
    assert blue > 120 and red < 60  # still the blue poster
    user = seen.body["messages"][1]["content"]
    assert [part["type"] for part in user] == ["image_url", "text"]
    assert "TOTAL 7.20" in user[1]["text"]
    assert result.text.endswith("I was shown 1 image.")
    assert result.model == "qwen3-vl-plus" and result.vision


def test_text_model_gets_no_image(fake_llm: FakeLLMServer, big_image: Path) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, model="qwen3-max", timeout_s=5)

    result = ChatDescriber(client).describe(_request(big_image))

    (seen,) = fake_llm.requests
    assert seen.image_urls == []
    assert isinstance(seen.body["messages"][1]["content"], str)
    assert result.backend == "openai" and not result.offline
    assert result.model == "qwen3-max" and result.endpoint == fake_llm.base_url
    assert result.language == "en" and result.usage.total_tokens > 0
    assert "I was shown" not in result.text


def test_vision_flag_and_model_override(fake_llm: FakeLLMServer, big_image: Path) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, model="qwen3-max", timeout_s=5)

    ChatDescriber(client, model="qwen3-vl-flash").describe(_request(big_image))
    ChatDescriber(client, model="qwen3-vl-flash", vision="off").describe(_request(big_image))
    ChatDescriber(client, vision="on").describe(_request(big_image))

    first, second, third = fake_llm.requests
    assert first.body["model"] == "qwen3-vl-flash" and len(first.image_urls) == 1
    assert second.image_urls == []
    assert third.body["model"] == "qwen3-max" and len(third.image_urls) == 1


def test_vision_is_not_guessed_from_the_name(fake_llm_factory, big_image: Path) -> None:  # type: ignore[no-untyped-def]
    """A "-vl" model the listing does not declare as taking images gets text only."""
    server = fake_llm_factory(models=["my-vl-lookalike"])  # listed as text-only
    client = OpenAICompatClient(base_url=server.base_url, model="my-vl-lookalike", timeout_s=5)

    result = ChatDescriber(client, vision="auto").describe(_request(big_image))

    assert server.requests[0].image_urls == [] and not result.vision
    assert takes_images({"id": "x", "architecture": {"input_modalities": ["text", "image"]}})
    assert takes_images({"id": "x", "model_info": {"supports_vision": True}})
    assert not takes_images({"id": "qwen3-vl-plus"}) and not takes_images(None)


def test_a_server_refusing_images_gets_one_text_only_retry(
    fake_llm_factory,  # type: ignore[no-untyped-def]
    big_image: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = fake_llm_factory(text_only=True)
    client = ResilientChatClient(
        endpoints=[server.base_url], policy=ResiliencePolicy(qps=0, retry_base_s=0.01)
    )

    result = ChatDescriber(client, vision="on").describe(_request(big_image))

    first, second = server.requests  # not five identical failures
    assert len(first.image_urls) == 1 and second.image_urls == []
    assert not result.vision and result.text.startswith("This is a fake answer about: Describe")
    assert "NARRATE_LLM_VISION=off" in caplog.text


def test_question_uses_the_answer_prompt_and_settings(fake_llm: FakeLLMServer) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    describer = ChatDescriber(client, temperature=0.0, top_p=0.5, max_tokens=50)

    result = describer.describe(_request(question="What is the total?"))

    body = fake_llm.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.0, 0.5, 50)
    assert body["messages"][1]["content"].startswith("Question: What is the total?")
    assert result.text.startswith("This is a fake answer about: Question: What is the total?")


def test_streaming_with_deltas(fake_llm: FakeLLMServer) -> None:
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    deltas: list[str] = []

    result = ChatDescriber(client, stream=True, on_delta=deltas.append).describe(_request())

    assert fake_llm.requests[0].body["stream"] is True
    assert len(deltas) > 3 and "".join(deltas).strip() == result.text


def test_thinking_is_stripped_and_empty_answer_is_transient(
    fake_llm_factory,  # type: ignore[no-untyped-def]
) -> None:
    thinking = fake_llm_factory(reply="<think>Let me see.</think>\nA café receipt.")
    empty = fake_llm_factory(reply="<think>hmm</think>")

    text = ChatDescriber(OpenAICompatClient(base_url=thinking.base_url)).describe(_request())
    assert text.text == "A café receipt."
    with pytest.raises(TransientError, match="empty answer"):
        ChatDescriber(OpenAICompatClient(base_url=empty.base_url)).describe(_request())


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_content_is_never_spoken(fake_llm: FakeLLMServer, stream: bool) -> None:
    fake_llm.script("reasoning", "reasoning:0")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    deltas: list[str] = []
    describer = ChatDescriber(client, stream=stream, enable_thinking=True)

    result = describer.describe(_request(), deltas.append)

    assert result.text.startswith("This is a fake answer about:")
    assert "think" not in result.text and "think" not in "".join(deltas)
    assert fake_llm.requests[0].body["enable_thinking"] is True
    with pytest.raises(EmptyAnswerError, match=r"only its reasoning.*ENABLE_THINKING"):
        describer.describe(_request())


def test_length_is_reported_as_truncated_and_says_so(fake_llm: FakeLLMServer) -> None:
    fake_llm.reply = "The receipt is from Harbour Bakery. It lists two coffees and a scone."
    fake_llm.script("length")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)

    result = ChatDescriber(client).describe(_request())

    assert result.truncated and result.finish_reason == "length" and not result.filtered
    assert result.text == "The receipt is from Harbour Bakery. The answer was cut short."
    assert result.notice == "The answer was cut short."


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_is_marked_and_announced(fake_llm: FakeLLMServer, stream: bool) -> None:
    fake_llm.reply = "The receipt is from Harbour Bakery and the total is 7.20."
    fake_llm.script("filter:6")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    deltas: list[str] = []

    result = ChatDescriber(client, stream=stream).describe(_request(), deltas.append)

    assert result.filtered and result.finish_reason == "content_filter"
    notice = "The rest of the answer was withheld by the provider's content filter."
    assert result.text == notice  # "The receipt is from Harbour Bakery" is no sentence
    assert result.notice == notice


def test_chinese_answer_gets_a_chinese_notice(fake_llm: FakeLLMServer) -> None:
    fake_llm.reply = "这是一张收据。总计七元二角，付款方式"
    fake_llm.script("filter:9")
    client = OpenAICompatClient(base_url=fake_llm.base_url, timeout_s=5)
    request = DescriptionRequest(ocr_text="收据", language="zh", features_summary="")

    result = ChatDescriber(client).describe(request)

    assert result.text == "这是一张收据。其余回答已被服务方的内容过滤拦下。"


def test_bad_image_is_an_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not really a picture")

    with pytest.raises(InputError, match=r"notes\.png"):
        image_data_url(fake)


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_think_blocks_never_reach_a_streaming_listener(size: int) -> None:
    text = (
        "<think>The user wants <b>it</b>.</think>\nA café <thin receipt.<think>more</think> Done."
    )
    out: list[str] = []
    keep = ThinkFilter(out.append)
    for i in range(0, len(text), size):
        keep(text[i : i + size])
    keep.flush()
    assert "".join(out) == "A café <thin receipt. Done."


def test_streamed_think_tags_are_not_delivered(fake_llm_factory) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm_factory(reply="<think>Let me see the receipt.</think>\nA café receipt.")
    deltas: list[str] = []
    client = OpenAICompatClient(base_url=server.base_url, timeout_s=5)

    result = ChatDescriber(client, stream=True).describe(_request(), deltas.append)

    assert result.text == "A café receipt." == "".join(deltas)
