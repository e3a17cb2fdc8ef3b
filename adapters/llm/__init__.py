"""LLM: OpenAI-compatible chat completions (Qwen3 by default) and the offline describer."""
