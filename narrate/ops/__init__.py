"""Operations around the pipeline: response cache, audit log, PII anonymisation, metrics, and
``llm``, which wraps them around the LLM step. Imports config and adapters, never the pipeline.
"""
