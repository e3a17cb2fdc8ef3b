"""Text to speech: text in, WAV file out."""
