"""narrate's error tree: what callers rely on beyond the message."""


def test_every_error_survives_pickling_with_its_message_and_attributes() -> None:
    """A Dask worker pickles a failed task run's error back to the flow's process."""
    import pickle

    from adapters.asr.base import NotSpeechError
    from adapters.errors import ConfigError, InputError, PermanentError, TransientError
    from adapters.llm.chat.errors import ChatError

    errors = [
        InputError("/in/empty.png", "file is empty (0 bytes)"),
        InputError(None, "no image found in inbox"),
        NotSpeechError("q.wav", "no-speech probability 0.93", "record it again"),
        ConfigError("espeak-ng has no voice 'xx'"),
        TransientError("timed out", retry_after_s=2.5),
        PermanentError("401 bad key"),
        ChatError("429 slow down", status_code=429, model="qwen3-max", attempts=3),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert str(back) == str(error)
        assert vars(back) == vars(error)
    assert pickle.loads(pickle.dumps(errors[0])).path == "/in/empty.png"
