"""Speech recognition: audio file in, transcript out."""
