"""RapidOCR's own limits (adapters/ocr/rapidocr.py); what it reads is tested with every engine
in ``test_ocr_contract.py`` and ``test_real_world.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import registry


def test_rapidocr_refuses_a_hairline_image_with_a_clear_error(tmp_path: Path) -> None:
    from PIL import Image

    from adapters.errors import PermanentError

    path = tmp_path / "hairline.png"
    Image.new("RGB", (40, 30000), "white").save(path)
    with pytest.raises(PermanentError, match=r"hairline\.png: RapidOCR cannot read a 40x30000"):
        registry.load("ocr", "rapidocr").recognize(path, "auto")
