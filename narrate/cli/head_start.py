"""``narrate describe``'s head start: its first image is read while the program imports.

A one-image ``describe`` spends ~0.3-0.5 s importing its settings (pydantic-settings) and
pipeline before OCR could start. Here, before those imports, the first image's tesseract
pass is started in the page segmentation mode its shape calls for (its model loads on the
other core), and, when the OCR settings are the defaults, the image is decoded, prepared
and fed to that pass on a thread (``TesseractOcr.read_ahead``) while the settings and
pipeline are imported on this one. The OCR step then takes over whatever matches its
engine, file and language exactly (``adapters.ocr.ahead``); the words read are the same.
"""

from __future__ import annotations

import os
from pathlib import Path

# The settings that shape an OCR read's first steps. When any is set, the read waits for
# the settings rather than guess them (a wrong guess would be dropped, its CPU wasted).
_OCR_VARIABLES = ("NARRATE_OCR_", "NARRATE_MAX_IMAGE_PIXELS")


def read_first_image_ahead(image: str, lang: str) -> None:
    """Start reading ``image`` (the first one to describe) in language ``lang`` now.

    Imports Pillow, then numpy, OpenCV and the tesseract adapter, on this thread.
    A file that is missing or not a JPEG or PNG gets the tesseract pass only (in
    narrate's default mode); its read reports what is wrong, as before.
    """
    from adapters.ocr.ahead import first_pack, layout_psm, park, upright_size

    path = Path(image)
    size = upright_size(path)
    park(first_pack(lang), layout_psm(3, *size) if size else 3)
    if size is None or not _ocr_settings_default():
        return
    from adapters.ocr.tesseract import TesseractOcr

    TesseractOcr().read_ahead(path, lang)


def _ocr_settings_default() -> bool:
    """True when no variable that shapes OCR's first steps is set (names are case-blind)."""
    return not any(name.upper().startswith(_OCR_VARIABLES) for name in os.environ)
