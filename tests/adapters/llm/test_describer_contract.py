"""The Describer contract, checked for every implementation (offline and chat)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.llm.base import Describer, Description, DescriptionRequest
from adapters.llm.chat.wire import OpenAICompatClient
from adapters.llm.chat_describer import ChatDescriber
from adapters.llm.offline import OfflineDescriber
from adapters.registry import get_class
from tests.support.fake_llm import FakeLLMServer

REQUESTS = [
    DescriptionRequest(ocr_text="OPEN 9-5\nMon-Fri", language="en", features_summary="sign"),
    DescriptionRequest(ocr_text="营业时间 9-5", language="zh", features_summary="招牌"),
    DescriptionRequest(ocr_text="", language="en", features_summary="a dark photo"),
    DescriptionRequest(
        ocr_text="OPEN 9-5", language="en", features_summary="sign", question="When open?"
    ),
]


class DescriberContract:
    """Inherit and provide a ``describer`` fixture to check an implementation."""

    @pytest.fixture
    def describer(self) -> Describer:
        raise NotImplementedError

    def test_has_the_protocol_method(self, describer: Describer) -> None:
        """Conformance itself is proved by mypy (``registry._CONFORMANCE``, typed fixtures)."""
        assert callable(describer.describe)

    @pytest.mark.parametrize("request_", REQUESTS, ids=["en", "zh", "no-text", "question"])
    def test_describes_in_the_requested_language(
        self, describer: Describer, request_: DescriptionRequest
    ) -> None:
        result = describer.describe(request_)

        assert isinstance(result, Description)
        assert result.text.strip() and result.text == result.text.strip()
        assert result.language == request_.language
        assert result.backend in ("openai", "offline") and result.model and result.endpoint
        assert result.offline == (result.backend == "offline")


class TestOfflineDescriberContract(DescriberContract):
    @pytest.fixture
    def describer(self) -> Describer:
        return get_class("llm", "offline")()


class TestChatDescriberContract(DescriberContract):
    @pytest.fixture
    def describer(self, fake_llm: FakeLLMServer) -> Iterator[Describer]:
        client = get_class("chat", "openai")(base_url=fake_llm.base_url, timeout_s=5)
        assert isinstance(client, OpenAICompatClient)
        describer = get_class("llm", "openai")(client)
        assert isinstance(describer, ChatDescriber)
        yield describer
        client.close()


def test_offline_is_registered() -> None:
    assert get_class("llm", "offline") is OfflineDescriber
