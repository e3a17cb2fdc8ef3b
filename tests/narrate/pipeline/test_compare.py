"""The A/B comparison's measures (narrate/pipeline/compare.py)."""

from __future__ import annotations

import pytest

from narrate.pipeline.compare import ocr_mention_share


def test_ocr_mention_share_counts_distinct_words_and_cjk_characters() -> None:
    assert ocr_mention_share("ALPHA NOTE 42", "a note about alpha") == pytest.approx(2 / 3)
    assert ocr_mention_share("停车场", "这是停车场的通知") == 1.0
    assert ocr_mention_share("", "anything") is None
