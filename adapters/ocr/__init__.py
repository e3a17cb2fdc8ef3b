"""OCR: image in, text + word boxes + language out."""
