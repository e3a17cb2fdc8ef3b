"""narrate/pipeline/results.py: results become plain JSON, with their public field names."""

from __future__ import annotations

import json
from pathlib import Path

from narrate.pipeline.results import AnswerResult, DescribeResult, to_jsonable

PUBLIC_FIELDS = {
    "description", "ocr_text", "ocr_confidence", "language", "features", "audio_path",
    "backend", "usage", "timings", "model", "endpoint",
}  # fmt: skip


def _result(**extra: object) -> DescribeResult:
    fields: dict = {
        "image_path": Path("in/receipt.png"),
        "description": "A receipt from Corner Cafe.",
        "ocr_text": "CORNER CAFE\nTOTAL 7.20",
        "ocr_confidence": 0.91,
        "language": "en",
        "features": {"width": 640, "height": 480},
        "audio_path": Path("out/receipt.wav"),
        "backend": "offline",
        "model": "offline",
        "endpoint": "local",
        "timings": {"ocr_s": 0.4123456789},
    }
    return DescribeResult(**{**fields, **extra})


def test_to_dict_is_plain_json_with_the_public_fields() -> None:
    data = _result().to_dict()
    assert set(data) >= PUBLIC_FIELDS
    assert data["audio_path"] == "out/receipt.wav" and data["timings"] == {"ocr_s": 0.412346}
    assert json.loads(_result().to_json()) == data


def test_answer_result_carries_the_question_and_the_description_fields() -> None:
    answer = AnswerResult(**_result().__dict__, question="What is the total?", answer="7.20")
    data = json.loads(answer.to_json())
    assert data["question"] == "What is the total?" and data["answer"] == "7.20"
    assert set(data) >= PUBLIC_FIELDS


def test_to_jsonable_handles_nested_tuples_and_paths() -> None:
    assert to_jsonable({"a": (Path("x"), [1.23456789])}) == {"a": ["x", [1.234568]]}
