"""Peaks are buffered and nothing is lost: the bounded queue (503 + Retry-After) against a slow
OpenAI-compatible server on loopback, and a failing backend answered with one line."""

from __future__ import annotations

import json
import threading

import httpx

from tests.narrate.service.conftest import SAMPLES

API_KEY = "sk-test-service-0123456789abcdef"


def _llm_env(fake_llm) -> dict[str, str]:
    return {
        "NARRATE_LLM_BACKEND": "openai",
        "NARRATE_LLM_BASE_URL": fake_llm.base_url,
        "NARRATE_LLM_API_KEY": API_KEY,
        "NARRATE_LLM_MAX_RETRIES": "0",
    }


def test_queue_full_is_503_and_every_accepted_request_completes(serve_api, fake_llm, tmp_path):
    fake_llm.latency_s = 1.5
    fake_llm.reply = "A cafe receipt; the total is 7.20."
    audit_dir = tmp_path / "audit"
    served = serve_api(
        {
            **_llm_env(fake_llm),
            "NARRATE_API_CONCURRENCY": "1",
            "NARRATE_API_MAX_QUEUE": "1",
            "NARRATE_AUDIT_DIR": str(audit_dir),
        }
    )
    png = (SAMPLES / "receipt_en.png").read_bytes()
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", png)}, timeout=120
        )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 503]
    assert len(accepted) + len(busy) == 5, [(r.status_code, r.text) for r in responses]
    assert len(accepted) >= 2 and busy  # one running + one waiting; the rest refused
    for response in busy:
        assert int(response.headers["retry-after"]) >= 1
        assert "queue full" in response.json()["detail"]
    for response in accepted:
        assert response.json()["backend"] == "openai"
        assert response.json()["description"] == "A cafe receipt; the total is 7.20."
    # exactly one LLM call per accepted request: nothing lost, nothing run for refused ones
    assert len(fake_llm.requests) == len(accepted)
    assert served.app.state.queue.depth() == (0, 0)
    audit = "".join(p.read_text() for p in audit_dir.glob("*.jsonl"))
    assert API_KEY not in audit
    statuses = [
        json.loads(line)["status"]
        for line in audit.splitlines()
        if json.loads(line).get("extra", {}).get("kind") == "api"
    ]
    assert sorted(statuses) == sorted(r.status_code for r in responses)


def test_llm_failure_is_a_502_with_one_line(serve_api, fake_llm):
    fake_llm.default = "401"
    served = serve_api(_llm_env(fake_llm))
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, timeout=120
        )
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("a backend failed: ") and "\n" not in detail
    assert API_KEY not in response.text


def test_a_new_queue_deletes_old_leftover_job_folders(tmp_path):
    import os
    import time

    from narrate.service.jobs import JobQueue

    old, young = tmp_path / "old-job", tmp_path / "young-job"
    for folder in (old, young):
        folder.mkdir()
        (folder / "result.wav").write_bytes(b"RIFF")
    long_ago = time.time() - 7200
    os.utime(old, (long_ago, long_ago))
    queue = JobQueue(
        lambda job: None, concurrency=1, max_queue=0, retention_s=3600, work_dir=tmp_path
    )
    try:
        assert not old.exists()  # a crashed server's results do not outlive the retention time
        assert (young / "result.wav").exists()  # maybe another server's: left alone
        assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"
    finally:
        queue.close()
