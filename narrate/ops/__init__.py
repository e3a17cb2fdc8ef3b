"""Operations around the pipeline: cache, audit log, PII anonymisation, metrics.

``llm`` wraps them around the LLM step. Imports config and adapters, never the pipeline.
"""
