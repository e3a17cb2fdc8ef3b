// narrate's web page: pick or take a photo, optionally ask (typed or recorded), then read and
// hear the result. Work is sent to POST /v1/jobs and polled, so slow phones' networks and
// gateways with short time-outs are fine. The access token lives in sessionStorage only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "narrate.token";
  const POLL_MS = 1000;
  let authNeeded = false;
  let photo = null;
  let recording = null; // a WAV Blob
  let recorder = null;
  let objectUrls = [];

  const token = () => sessionStorage.getItem(TOKEN_KEY);
  const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function say(text) {
    $("status").textContent = text;
  }

  function fail(text) {
    say("");
    $("error").textContent = text;
  }

  async function detailOf(response) {
    try {
      const data = await response.json();
      return data.detail || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status} ${response.statusText}`;
    }
  }

  function askForToken(message) {
    $("token-form").hidden = false;
    if (message) $("token-help").textContent = message;
    $("token").focus();
  }

  function updateSubmitLabel() {
    const asking = $("question").value.trim() !== "" || recording !== null;
    $("submit").textContent = asking ? "Ask about the photo" : "Describe the photo";
  }

  function choosePhoto(event) {
    const file = event.target.files && event.target.files[0];
    if (!file) return;
    photo = file;
    $("photo-name").textContent = `Chosen: ${file.name || "photo from the camera"}`;
    const preview = $("preview");
    const url = URL.createObjectURL(file);
    objectUrls.push(url);
    preview.src = url;
    preview.alt = "Preview of the chosen photo";
    preview.hidden = false;
    $("error").textContent = "";
  }

  // -- recording a question: whatever the browser records, sent as 16 kHz mono WAV ----------

  function wavBytes(samples, rate) {
    const buffer = new ArrayBuffer(44 + samples.length * 2);
    const view = new DataView(buffer);
    const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
    text(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, rate, true);
    view.setUint32(28, rate * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    text(36, "data");
    view.setUint32(40, samples.length * 2, true);
    samples.forEach((s, i) => {
      const v = Math.max(-1, Math.min(1, s));
      view.setInt16(44 + i * 2, v < 0 ? v * 0x8000 : v * 0x7fff, true);
    });
    return new Blob([buffer], { type: "audio/wav" });
  }

  async function toWav(blob) {
    const context = new AudioContext();
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    await context.close();
    const rate = 16000;
    const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * rate), rate);
    const source = offline.createBufferSource();
    source.buffer = decoded;
    source.connect(offline.destination);
    source.start();
    const rendered = await offline.startRendering();
    return { wav: wavBytes(rendered.getChannelData(0), rate), seconds: decoded.duration };
  }

  async function toggleRecording() {
    const button = $("record");
    if (recorder) {
      recorder.stop();
      return;
    }
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      $("record-status").textContent =
        "Recording needs a secure page (HTTPS or localhost); type the question instead.";
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      $("record-status").textContent = `The microphone is not available (${err.message}).`;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Record a question";
      try {
        const { wav, seconds } = await toWav(new Blob(chunks, { type: chunks[0]?.type }));
        recording = wav;
        $("record-status").textContent =
          `Question recorded (${seconds.toFixed(1)} s); it is sent with the photo.`;
        $("discard").hidden = false;
      } catch (err) {
        $("record-status").textContent = `The recording could not be read (${err.message}).`;
      }
      updateSubmitLabel();
    };
    recorder.start();
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop recording";
    $("record-status").textContent = "Recording. Press Stop recording when you are done.";
  }

  function discardRecording() {
    recording = null;
    $("discard").hidden = true;
    $("record-status").textContent = "Recording removed.";
    updateSubmitLabel();
    $("record").focus();
  }

  // -- sending and showing ------------------------------------------------------------------

  async function show(result) {
    $("result").dataset.jobId = result.id;
    const answering = Boolean(result.question);
    $("result-heading").textContent = answering ? "Answer" : "Description";
    $("result-question").hidden = !answering;
    $("result-question").textContent = answering ? `Question: ${result.question}` : "";
    $("result-text").textContent = answering ? result.answer : result.description;
    $("result-note").hidden = !result.truncated;
    $("result-note").textContent = result.truncated ? "This text was cut short." : "";
    $("ocr-text").textContent = result.ocr_text || "(no text was found)";
    const audio = $("result-audio");
    const response = await fetch(result.audio_url, { headers: authHeaders() });
    if (response.ok) {
      const url = URL.createObjectURL(await response.blob());
      objectUrls.push(url);
      audio.src = url;
    } else {
      $("error").textContent = `The audio could not be fetched: ${await detailOf(response)}`;
    }
    $("result").hidden = false;
    $("result-heading").focus();
    say(`Done. The ${answering ? "answer" : "description"} is below, with a player to hear it.`);
  }

  async function poll(statusUrl) {
    for (;;) {
      await sleep(POLL_MS);
      const response = await fetch(statusUrl, { headers: authHeaders() });
      if (!response.ok) return fail(await detailOf(response));
      const job = await response.json();
      if (job.status === "done") return show(job.result);
      if (job.status === "failed") return fail(job.error.detail);
      say(job.status === "queued" ? "Waiting for a free worker…" : "Working on it…");
    }
  }

  async function submit(event) {
    event.preventDefault();
    $("error").textContent = "";
    if (!photo) {
      fail("Choose or take a photo first.");
      $("photo").focus();
      return;
    }
    if (authNeeded && !token()) {
      askForToken();
      return;
    }
    const question = $("question").value.trim();
    if (question && recording) {
      fail("Ask one question at a time: clear the typed question or remove the recording.");
      return;
    }
    const form = new FormData();
    form.append("image", photo, photo.name || "photo.jpg");
    if (question) form.append("question", question);
    if (recording) form.append("audio", recording, "question.wav");
    $("submit").disabled = true;
    $("result").hidden = true;
    say("Sending the photo…");
    try {
      const response = await fetch("/v1/jobs", { method: "POST", headers: authHeaders(), body: form });
      if (response.status === 401) {
        const why = await detailOf(response);
        sessionStorage.removeItem(TOKEN_KEY);
        fail(`The access token was refused: ${why}`);
        askForToken(`The access token was refused (${why}). Enter a new one.`);
        return;
      }
      if (!response.ok) return fail(await detailOf(response));
      const job = await response.json();
      say("Working on it…");
      await poll(job.status_url);
    } catch (err) {
      fail(`The server could not be reached (${err.message}). Try again.`);
    } finally {
      $("submit").disabled = false;
    }
  }

  function saveToken(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    $("token-form").hidden = true;
    say("Token saved for this browser tab.");
    $("photo").focus();
  }

  async function start() {
    $("photo").addEventListener("change", choosePhoto);
    $("camera").addEventListener("change", choosePhoto);
    $("question").addEventListener("input", updateSubmitLabel);
    $("record").addEventListener("click", toggleRecording);
    $("discard").addEventListener("click", discardRecording);
    $("narrate-form").addEventListener("submit", submit);
    $("token-form").addEventListener("submit", saveToken);
    try {
      const health = await (await fetch("/healthz")).json();
      authNeeded = Boolean(health.auth);
    } catch {
      authNeeded = true;
    }
    if (authNeeded && !token()) askForToken();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
