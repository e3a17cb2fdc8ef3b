"""Adapters: one subpackage per capability (ocr, features, llm, tts, asr).

Each ``base.py`` holds the capability's Protocol, result types and nothing else; each other
module is one implementation. Adapters take explicit keyword arguments (never read the
environment) and convert library errors into ``adapters.errors`` at their boundary.
"""
