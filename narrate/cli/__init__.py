"""narrate's command line: ``narrate describe | ask | batch | models | metrics`` (top layer)."""
