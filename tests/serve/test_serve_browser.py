"""The page in a real browser: headless Chromium driven by Selenium against uvicorn on a loopback port.

Skips (saying what to install) when selenium, chromium or chromedriver is missing. Set
``IZNET_CHROMIUM`` / ``IZNET_CHROMEDRIVER`` to use other binaries, and ``IZNET_SCREENSHOT=path.png`` to keep
a screenshot of the page with a labelled photo.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1360,1000",
]
INSTALL_HINT = ("apt-get install -y chromium chromium-driver, and pip install selenium (in the dev extra);"
                " or set IZNET_CHROMIUM and IZNET_CHROMEDRIVER")


def _first_file(*candidates: str | None) -> str | None:
    for c in candidates:
        if c and Path(c).is_file():
            return c
    return None


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"browser test skipped: selenium is not installed ({INSTALL_HINT})")
    chromium = _first_file(os.environ.get("IZNET_CHROMIUM"), shutil.which("chromium"),
                           shutil.which("chromium-browser"), shutil.which("google-chrome"))
    driver_path = _first_file(os.environ.get("IZNET_CHROMEDRIVER"), shutil.which("chromedriver"),
                              "/usr/lib/chromium/chromedriver")
    if chromium is None or driver_path is None:
        missing = "chromium" if chromium is None else "chromedriver"
        pytest.skip(f"browser test skipped: {missing} not found ({INSTALL_HINT})")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(flag)
    # the driver path is given, so Selenium Manager (which would go online) is never run
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_page_labels_a_photo_and_manages_people(browser, live_server, synth, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url, svc = live_server(threshold=0.3)
    wait = WebDriverWait(browser, 20)
    photos = tmp_path / "photos"
    photos.mkdir()

    def save(name: str, data: bytes) -> str:
        (photos / name).write_bytes(data)
        return str(photos / name)

    def text(css: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, css).text

    browser.get(url + "/")
    wait.until(lambda d: "0 people" in text("#health"))
    assert not browser.find_element(By.ID, "people").is_displayed()

    # enrol two people from the form, two photos each
    for p, name in ((0, "ann"), (1, "Bob Smith")):
        browser.find_element(By.ID, "enrol-name").send_keys(name)
        files = [save(f"{name}{v}.png", synth.photo_bytes(p, v)) for v in (1, 2)]
        browser.find_element(By.ID, "enrol-files").send_keys("\n".join(files))
        browser.find_element(By.ID, "enrol-button").click()
        wait.until(lambda d: f"Enrolled {name}: 2 photos added" in text("#enrol-status"))
        wait.until(lambda d: name in [e.text for e in d.find_elements(By.CSS_SELECTOR, "#people-body td.who .name")])
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#people-body td.who .name")] == ["ann", "Bob Smith"]
    wait.until(lambda d: "2 people, 4 photos" in text("#health"))

    # label a group photo: ann, Bob and a stranger (cy, not enrolled)
    group = synth.make_photo([(0, 5, 15, 60), (1, 5, 100, 20), (2, 5, 180, 90)], size=(180, 240))
    browser.find_element(By.ID, "photo-input").send_keys(save("group.png", synth.encode(group)))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces li")) == 3)
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#faces .face-name")]
    assert names == ["ann", "Bob Smith", "unknown"]  # numbered left to right
    tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#boxes .tag")]
    assert tags == ["1 · ann", "2 · Bob Smith", "3 · unknown"]
    dists = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#faces .face-dist")]
    assert all(float(d) < 0.3 for d in dists[:2]) and float(dists[2]) > 0.3  # the stranger is over the threshold
    assert "3 faces: ann, Bob Smith and 1 unknown face" == text("#summary")
    img = browser.find_element(By.ID, "result-img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 240
    # the boxes sit over the picture where the faces are
    box = browser.find_elements(By.CSS_SELECTOR, "#boxes .box")[1]
    rel = browser.execute_script(
        "const b = arguments[0].getBoundingClientRect(), i = arguments[1].getBoundingClientRect();"
        "return [(b.left - i.left) / i.width, (b.top - i.top) / i.height];", box, img)
    assert rel == pytest.approx([100 / 240, 20 / 180], abs=0.02)
    shot = os.environ.get("IZNET_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)

    # a file that is not an image: the server's message is shown
    browser.find_element(By.ID, "photo-input").send_keys(save("notes.jpg", b"just some text\n" * 20))
    wait.until(lambda d: "not an image" in text("#label-status"))
    assert "bad" in browser.find_element(By.ID, "label-status").get_attribute("class")

    # rename Bob, then remove ann (two clicks)
    row = browser.find_element(By.CSS_SELECTOR, '#people-body tr[data-name="Bob Smith"]')
    row.find_element(By.XPATH, ".//button[text()='Rename']").click()
    field = row.find_element(By.CSS_SELECTOR, "input[type=text]")
    field.clear()
    field.send_keys("Bob\n")
    wait.until(lambda d: "Renamed Bob Smith to Bob." in text("#people-status"))
    remove = browser.find_element(By.CSS_SELECTOR, '#people-body tr[data-name="ann"]').find_element(
        By.XPATH, ".//button[text()='Remove']")
    remove.click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, '#people-body tr[data-name="ann"] .danger'),
                                                "Really remove?"))
    remove.click()
    wait.until(lambda d: "Removed ann (2 photos)." in text("#people-status"))
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#people-body td.who .name")] == ["Bob"]
    assert [p.name for p in svc.people()] == ["Bob"]
