"""LLM: describers (chat-backed, offline, fallback) over the chat client (``.chat``)."""
