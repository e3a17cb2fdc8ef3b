"""ResilientChatClient against real fault-injecting servers on loopback (one per region)."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from adapters.errors import PermanentError, TransientError
from adapters.llm.chat.breaker import CircuitBreaker
from adapters.llm.chat.errors import ChatPermanentError, LLMExhaustedError
from adapters.llm.chat.policy import ResiliencePolicy, backoff_delay
from adapters.llm.chat.resilient import ResilientChatClient
from adapters.llm.chat.types import AttemptRecord, ChatClient, ChatMessage, ChatRequest
from tests.support.fake_llm import FakeLLMServer, tokenize

Factory = Callable[..., FakeLLMServer]
QUESTION = "Describe the red bus parked in front of the old station building please"
REQUEST = ChatRequest(messages=(ChatMessage("user", QUESTION),), max_tokens=400)


POLICY_FIELDS = {f.name for f in dataclasses.fields(ResiliencePolicy)}


def make_client(*servers: FakeLLMServer, **kwargs: Any) -> ResilientChatClient:
    """A client for ``servers`` (in order) with test-sized delays and no rate limit.

    Keyword arguments named like ``ResiliencePolicy`` fields go into the policy.
    """
    policy: dict[str, Any] = {
        "timeout_s": 5.0,
        "retry_base_s": 0.05,
        "retry_cap_s": 0.2,
        "qps": 0,
        "deadline_s": 20.0,
    }
    policy.update({k: v for k, v in kwargs.items() if k in POLICY_FIELDS})
    options = {k: v for k, v in kwargs.items() if k not in POLICY_FIELDS}
    return ResilientChatClient(
        endpoints=[s.base_url for s in servers], policy=ResiliencePolicy(**policy), **options
    )


def models_sent(server: FakeLLMServer) -> list[str]:
    return [r.body["model"] for r in server.requests]


def test_conforms_to_the_chat_client_protocol(fake_llm: FakeLLMServer) -> None:
    with make_client(fake_llm) as client:
        typed: ChatClient = client  # mypy checks the conformance
        assert typed is client
        assert "api_key=<none>" in repr(client)


def test_retries_a_429_after_at_least_its_retry_after(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("429:0.4", "429-ms:300", "ok")
    with make_client(fake_llm) as client:
        result = client.complete(REQUEST)

    times = [r.time for r in fake_llm.requests]
    assert [r.fault for r in fake_llm.requests] == ["429:0.4", "429-ms:300", "ok"]
    assert times[1] - times[0] >= 0.4
    assert times[2] - times[1] >= 0.3
    assert result.text == fake_llm.answer_text(fake_llm.requests[-1].body)
    assert result.attempts == 3 and result.endpoint == fake_llm.base_url


@pytest.mark.parametrize("fault", ["500", "reset", "malformed", "429-bare"])
def test_transient_faults_are_retried_until_the_answer(fake_llm: FakeLLMServer, fault: str) -> None:
    fake_llm.script(fault, fault, "ok")
    with make_client(fake_llm) as client:
        result = client.complete(REQUEST)

    assert len(fake_llm.requests) == 3
    assert "red bus parked" in result.text
    assert result.attempts == 3


def test_insufficient_quota_is_sent_once_and_says_to_top_up(fake_llm: FakeLLMServer) -> None:
    fake_llm.default = "insufficient_quota"
    with make_client(fake_llm, max_retries=4) as client, pytest.raises(PermanentError) as info:
        client.complete(REQUEST)

    assert len(fake_llm.requests) == 1
    assert isinstance(info.value, ChatPermanentError)
    assert info.value.attempts == 1 and info.value.status_code == 429
    assert "top up" in str(info.value) and "insufficient_quota" in str(info.value)


def test_bad_key_is_not_retried_and_the_key_never_leaks(
    fake_llm_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server = fake_llm_factory(api_key="right-key")
    caplog.set_level(logging.DEBUG)
    with make_client(server, api_key="sk-wrong-secret-123") as client:
        with pytest.raises(PermanentError) as info:
            client.complete(REQUEST)
        assert "sk-wrong-secret-123" not in repr(client)

    assert len(server.requests) == 1
    assert server.requests[0].headers["authorization"] == "Bearer sk-wrong-secret-123"
    assert "API key" in str(info.value) and "sk-wrong-secret-123" not in str(info.value)
    assert "sk-wrong-secret-123" not in caplog.text


def test_503_on_the_primary_is_answered_by_the_backup(fake_llm_factory: Factory) -> None:
    primary = fake_llm_factory(script=["503"])
    backup = fake_llm_factory()
    with make_client(primary, backup) as client:
        result = client.complete(REQUEST)

    assert len(primary.requests) == 1 and len(backup.requests) == 1
    assert result.endpoint == backup.base_url
    assert result.endpoints_tried == (primary.base_url, backup.base_url)
    assert "red bus parked" in result.text


def test_connection_refused_fails_over_to_the_backup(fake_llm_factory: Factory) -> None:
    dead = fake_llm_factory()
    dead_url = dead.base_url
    dead.stop()
    backup = fake_llm_factory()
    client = ResilientChatClient(
        endpoints=[dead_url, backup.base_url], policy=ResiliencePolicy(qps=0, timeout_s=5)
    )
    with client:
        result = client.complete(REQUEST)

    assert result.endpoint == backup.base_url and result.endpoints_tried[0] == dead_url
    assert len(backup.requests) == 1


def test_breaker_skips_a_dead_primary_then_probes_it_after_the_cool_down(
    fake_llm_factory: Factory,
) -> None:
    primary = fake_llm_factory(default="503")
    backup = fake_llm_factory()
    client = make_client(primary, backup, breaker_threshold=2, breaker_cooldown_s=0.6)
    with client:
        for _ in range(2):  # two failures open the primary's circuit
            assert client.complete(REQUEST).endpoint == backup.base_url
        assert len(primary.requests) == 2
        assert client.breaker(primary.base_url).state == "open"

        for _ in range(3):  # while open, the primary is skipped entirely
            assert client.complete(REQUEST).endpoint == backup.base_url
        assert len(primary.requests) == 2 and len(backup.requests) == 5

        time.sleep(0.7)
        primary.default = "ok"  # the region recovers; the probe finds out
        result = client.complete(REQUEST)

    assert result.endpoint == primary.base_url
    assert len(primary.requests) == 3 and len(backup.requests) == 5
    assert client.breaker(primary.base_url).state == "closed"


def test_all_circuits_open_still_tries_the_least_recently_failed(
    fake_llm_factory: Factory,
) -> None:
    first = fake_llm_factory(default="503")
    second = fake_llm_factory(default="503")
    client = make_client(first, second, breaker_threshold=1, breaker_cooldown_s=60, max_retries=1)
    with client:
        with pytest.raises(LLMExhaustedError):
            client.complete(REQUEST)
        assert client.breaker(first.base_url).state == "open"
        assert client.breaker(second.base_url).state == "open"
        sent = len(first.requests) + len(second.requests)

        first.default = "ok"  # failed longest ago: it is the one tried
        result = client.complete(REQUEST)

    assert result.endpoint == first.base_url
    assert len(first.requests) + len(second.requests) == sent + 1


def test_unknown_model_falls_back_to_the_next_model(fake_llm_factory: Factory) -> None:
    server = fake_llm_factory(reject_models=["qwen3-max"])
    with make_client(server, model="qwen3-max", fallback_models=["qwen-plus"]) as client:
        result = client.complete(REQUEST)

    assert models_sent(server) == ["qwen3-max", "qwen-plus"]
    assert result.model == "qwen-plus" and result.fallback_from == ("qwen3-max",)
    assert result.attempts == 2 and "red bus parked" in result.text


def test_retries_used_up_fall_back_to_the_next_model(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("500", "500", "ok")
    with make_client(fake_llm, max_retries=1, fallback_models="qwen-plus,offline") as client:
        result = client.complete(REQUEST)

    assert models_sent(fake_llm) == ["qwen3-max", "qwen3-max", "qwen-plus"]
    assert result.model == "qwen-plus" and result.attempts == 3


def test_no_model_left_raises_with_every_model_tried(fake_llm_factory: Factory) -> None:
    server = fake_llm_factory(reject_models=["qwen3-max", "qwen-plus"])
    client = make_client(server, fallback_models=["qwen-plus"])
    with client, pytest.raises(ChatPermanentError) as info:
        client.complete(REQUEST)

    assert info.value.models_tried == ("qwen3-max", "qwen-plus")
    assert "model_not_found" in str(info.value) and info.value.attempts == 2


@pytest.mark.parametrize("mode", ["partial", "portable"])
def test_stream_cut_mid_way_continues_without_losing_or_repeating_text(
    fake_llm_factory: Factory, mode: str
) -> None:
    primary = fake_llm_factory(script=["stream-cut:4"])
    backup = fake_llm_factory()
    deltas: list[str] = []
    with make_client(primary, backup, continuation=mode) as client:
        result = client.stream(REQUEST, on_delta=deltas.append)

    full = primary.answer_text(primary.requests[0].body)
    head = "".join(tokenize(full)[:4])
    assert "".join(deltas) == result.text == full
    assert deltas[:4] == tokenize(full)[:4]  # delivered before the cut, never again
    sent = backup.requests[0].body["messages"]
    if mode == "partial":
        assert sent[-1] == {"role": "assistant", "content": head, "partial": True}
    else:  # the text so far as a plain assistant turn, then a request to go on
        assert sent[-2] == {"role": "assistant", "content": head}
        assert sent[-1]["role"] == "user" and "Continue" in sent[-1]["content"]
    assert result.endpoint == backup.base_url and result.attempts == 2
    assert result.ttft_s is not None and result.ttft_s <= result.latency_s


def test_stream_cut_then_model_fallback_keeps_the_text(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("stream-cut:3")
    deltas: list[str] = []
    client = make_client(
        fake_llm, max_retries=0, fallback_models=["qwen-plus"], continuation="partial"
    )
    with client:
        result = client.stream(REQUEST, on_delta=deltas.append)

    first, second = fake_llm.requests
    assert (first.body["model"], second.body["model"]) == ("qwen3-max", "qwen-plus")
    assert second.body["messages"][-1]["partial"] is True
    assert second.body["messages"][-1]["content"] == "".join(deltas[:3])
    assert "".join(deltas) == result.text == fake_llm.answer_text(first.body)
    assert result.fallback_from == ("qwen3-max",)


def test_length_is_continued_until_the_answer_is_complete(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("length")
    with make_client(fake_llm, continuation="partial") as client:
        result = client.complete(REQUEST)

    first, second = fake_llm.requests
    full = fake_llm.answer_text(first.body)
    assert result.text == full and result.finish_reason == "stop" and not result.truncated
    assert second.body["messages"][-1]["partial"] is True
    assert full.startswith(second.body["messages"][-1]["content"])
    assert result.continuations == 1 and result.attempts == 2
    assert result.usage is not None
    assert result.usage.completion_tokens == len(tokenize(full))  # summed over both


def test_length_beyond_the_continuations_is_marked_truncated(fake_llm: FakeLLMServer) -> None:
    short = ChatRequest(messages=REQUEST.messages, max_tokens=3, stream=True)
    deltas: list[str] = []
    with make_client(fake_llm, max_continuations=2) as client:
        result = client.stream(short, on_delta=deltas.append)

    tokens = tokenize(fake_llm.answer_text(fake_llm.requests[0].body))
    assert len(fake_llm.requests) == 3  # the first answer and two continuations
    assert result.truncated and result.finish_reason == "length"
    assert result.text == "".join(deltas) == "".join(tokens[:9])


def test_the_deadline_bounds_a_hanging_server(fake_llm: FakeLLMServer) -> None:
    fake_llm.default = "hang"
    started = time.monotonic()
    client = make_client(fake_llm, timeout_s=0.4, deadline_s=1.0, max_retries=50)
    with client, pytest.raises(LLMExhaustedError) as info:
        client.complete(REQUEST)

    assert time.monotonic() - started < 5  # generous: the point is "not 50 x 0.4 s"
    assert 2 <= len(fake_llm.requests) <= 4
    assert "deadline" in str(info.value) and info.value.attempts == len(fake_llm.requests)


def test_a_retry_after_past_the_deadline_is_not_waited_for(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("429:30")
    started = time.monotonic()
    with make_client(fake_llm, deadline_s=3.0) as client, pytest.raises(TransientError) as info:
        client.complete(REQUEST)

    assert time.monotonic() - started < 3
    assert len(fake_llm.requests) == 1
    assert info.value.retry_after_s == 30 and "would pass" in str(info.value)


def test_backoff_is_full_jitter_capped_and_at_least_retry_after(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("500", "500", "500", "429:2", "ok")
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = make_client(
        fake_llm,
        retry_base_s=1.0,
        retry_cap_s=3.0,
        sleep=sleep,
        clock=lambda: now[0],
        rng=random.Random(7),
    )
    with client:
        client.complete(REQUEST)

    draws = random.Random(7)
    expected = [backoff_delay(n, base=1.0, cap=3.0, draw=draws.random()) for n in range(3)]
    assert slept[:3] == pytest.approx(expected)
    assert [min(3.0, 2**n) for n in range(3)] == [1.0, 2.0, 3.0]
    assert all(0 <= s <= c for s, c in zip(slept, [1.0, 2.0, 3.0], strict=False))
    assert slept[3] >= 2.0  # Retry-After wins over a smaller jittered delay
    assert len(fake_llm.requests) == 5


def test_on_attempt_hooks_see_every_attempt(fake_llm: FakeLLMServer) -> None:
    fake_llm.script("429-ms:10", "ok")
    records: list[AttemptRecord] = []
    with make_client(fake_llm, on_attempt=[records.append]) as client:
        client.on_attempt.append(lambda record: 1 / 0)  # a broken hook changes nothing
        result = client.complete(REQUEST)

    assert [r.outcome for r in records] == ["transient", "ok"]
    assert [r.attempt for r in records] == [1, 2]
    assert records[0].status_code == 429 and records[0].error_code == "Throttling.RateQuota"
    assert len({r.call_id for r in records}) == 1
    assert records[1].usage == result.usage and records[1].request_id == result.request_id
    assert records[1].model == "qwen3-max" and records[1].endpoint == fake_llm.base_url
    assert records[1].parameters["max_tokens"] == 400


def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # nobody else while it runs
    breaker.record_failure()  # the probe failed: open again for a full cool-down
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()
