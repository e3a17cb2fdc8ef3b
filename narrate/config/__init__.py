"""Configuration: the pydantic-settings tree (``settings``) and secret redaction (``secrets``).

A leaf layer: it imports nothing from the rest of narrate, only ``adapters.errors``.
"""
