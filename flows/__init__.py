"""Prefect flows: orchestration only (which task, in what order, with what concurrency)."""
