"""narrate: images to speech, and spoken questions about images, on Prefect 3."""

__version__ = "0.1.0"
