"""Reading replies: pure functions, table-tested."""

from __future__ import annotations

import pytest

from adapters.llm.chat.errors import (
    ChatPermanentError,
    ChatTransientError,
    ContextLengthError,
    EndpointNotFoundError,
    ImageInputRejectedError,
    ModelNotFoundError,
)
from adapters.llm.chat.replies import (
    classify_status,
    embedded_error,
    error_fields,
    finish_kind,
    looks_like_page,
    page_summary,
    status_of,
    usage_of,
)
from adapters.llm.chat.types import Usage


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("stop", "stop"),
        ("eos", "stop"),
        ("end_turn", "stop"),
        ("length", "length"),
        ("content_filter", "filtered"),
        ("tool_calls", "filtered"),
        ("null", "incomplete"),
        ("NULL", "incomplete"),
        ("", "incomplete"),
        (None, "incomplete"),
        ("abort", "incomplete"),
    ],
)
def test_finish_kind(reason: str | None, kind: str) -> None:
    assert finish_kind(reason) == kind


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b'{"error": {"code": "x", "type": "t", "message": "m"}}', ("x", "t", "m")),
        (b'{"code": "Arrearage", "message": "pay up", "request_id": "r"}',
         ("Arrearage", None, "pay up")),
        (b'{"object": "error", "message": "The model `m` does not exist.", "code": 404}',
         ("404", "error", "The model `m` does not exist.")),
        (b'{"detail": "Not Found"}', (None, None, "Not Found")),
        (b'{"error": "bad things"}', (None, None, "bad things")),
        (b"upstream connect error\nor disconnect",
         (None, None, "upstream connect error or disconnect")),
    ],
)  # fmt: skip
def test_error_fields(body: bytes, fields: tuple[str | None, str | None, str]) -> None:
    assert error_fields(body) == fields


def test_embedded_error_and_status_of() -> None:
    assert embedded_error({"object": "error", "message": "x"})
    assert embedded_error({"error": {"message": "x"}})
    assert embedded_error({"code": "Throttling", "message": "slow down"})
    assert not embedded_error({"choices": [{}], "error": None})
    assert status_of("404", 200) == 404 and status_of("Throttling", 200) == 200
    assert status_of("200", 500) == 500


@pytest.mark.parametrize(
    ("status", "reason", "body", "line"),
    [
        (502, "Bad Gateway", b"<html><head><title>502 Bad Gateway</title></head></html>",
         "HTTP 502 Bad Gateway"),
        (503, "", b"<html><head><title>Maintenance\n  window</title>",
         'HTTP 503 (page "Maintenance window")'),
        (500, "Internal Server Error", b"<h1>Oops &amp; sorry</h1>",
         'HTTP 500 Internal Server Error (page "Oops & sorry")'),
    ],
)  # fmt: skip
def test_page_summary_is_one_clean_line(status: int, reason: str, body: bytes, line: str) -> None:
    assert page_summary(status, reason, body) == line
    assert looks_like_page(body)


def test_usage_unknown_is_none() -> None:
    assert usage_of(None) is None and usage_of("n/a") is None
    assert usage_of({"prompt_tokens": 3, "completion_tokens": 4}) == Usage(3, 4, 7)


@pytest.mark.parametrize(
    ("status", "code", "message", "has_image", "endpoint", "kind"),
    [
        (429, "insufficient_quota", "", False, "https://h/v1", ChatPermanentError),
        (429, "limit_requests", "slow", False, "https://h/v1", ChatTransientError),
        (401, "invalid_api_key", "", False, "https://h/v1", ChatPermanentError),
        (404, "model_not_found", "", False, "https://h/v1", ModelNotFoundError),
        (404, None, "The model `x` does not exist", False, "https://h/v1", ModelNotFoundError),
        (404, "not_found", "no route", False, "https://h", EndpointNotFoundError),
        (400, "context_length_exceeded", "", False, "https://h/v1", ContextLengthError),
        (400, None, "This model's maximum context length is 2048 tokens", False, "https://h/v1",
         ContextLengthError),
        (500, None, "Internal Server Error", True, "https://h/v1", ImageInputRejectedError),
        (500, None, "Internal Server Error", False, "https://h/v1", ChatTransientError),
        (503, None, "", False, "https://h/v1", ChatTransientError),
        (400, "invalid_parameter", "bad temperature", False, "https://h/v1", ChatPermanentError),
        (200, None, "The server is busy.", False, "https://h/v1", ChatTransientError),
    ],
)  # fmt: skip
def test_classify_status(
    status: int, code: str | None, message: str, has_image: bool, endpoint: str, kind: type
) -> None:
    error = classify_status(
        status, code, None, message, where="w", endpoint=endpoint, model="m", has_image=has_image
    )
    assert type(error) is kind
    assert error.status_code == status and error.endpoint == endpoint


def test_a_404_on_the_path_suggests_v1() -> None:
    error = classify_status(
        404, None, None, "Not Found", where="w", endpoint="http://h:8000", model="m"
    )
    assert "try http://h:8000/v1" in str(error)
    with_v1 = classify_status(
        404, None, None, "Not Found", where="w", endpoint="http://h/v1", model="m"
    )
    assert "/v1" not in str(with_v1).split("NARRATE_LLM_BASE_URL")[1]
