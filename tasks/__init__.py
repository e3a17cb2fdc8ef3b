"""Prefect tasks: each a thin, typed, retryable wrapper around one adapter call."""
