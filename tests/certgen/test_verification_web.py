"""The verification web page in headless Chromium (Debian chromium + chromium-driver, driven by Selenium):
upload a valid PDF, a tampered PDF and a degraded scan, read the verdicts the page shows."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from certgen.keys import KeyPool
from certgen.verification import VerificationContext
from certgen.verification_web import make_app
from tests.certgen.issued_world import IssuedWorld, build_issued_world, degraded_scan_png

CHROMEDRIVER = "/usr/bin/chromedriver"  # the Debian package's; Selenium must never download one


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> IssuedWorld:
    return build_issued_world(tmp_path_factory.mktemp("verification-web"), key_pool)


@pytest.fixture(scope="module")
def server_url(world: IssuedWorld) -> Iterator[str]:
    """The page served by aiohttp on 127.0.0.1 from a thread with its own event loop."""
    audit: list[tuple[str, int, str | None]] = []
    app = make_app(VerificationContext([world.seal_root], world.archive, world.key_of,
                                       lambda *entry: audit.append(entry)))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=1280,1400"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def upload(browser: webdriver.Chrome, url: str, file: Path, **fields: str) -> str:
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(file))
    for name, value in fields.items():
        element = browser.find_element(By.ID, name)
        if element.get_attribute("type") == "date":  # typed in the locale's order; set the value instead
            browser.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.send_keys(value)
    browser.find_element(By.ID, "submit").click()
    verdict = WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "verdict")))
    return verdict.text


def test_the_page_shows_the_verdicts(browser: webdriver.Chrome, server_url: str, world: IssuedWorld,
                                     tmp_path: Path) -> None:
    browser.get(server_url + "/")
    assert browser.title == "Certificate verification"

    good = tmp_path / "certificate.pdf"
    good.write_bytes(world.household.pdf)
    assert upload(browser, server_url, good).startswith("VALID")
    assert "cert-household" in browser.find_element(By.ID, "findings").text

    tampered = bytearray(world.household.pdf)
    tampered[len(tampered) // 2] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(tampered))
    assert upload(browser, server_url, bad) == "INVALID"
    findings = browser.find_element(By.ID, "findings").text
    assert "altered after sealing" in findings and "not in the issuance record" in findings

    scan = tmp_path / "scan.png"
    scan.write_bytes(degraded_scan_png(world.household.pdf, tmp_path))
    verdict = upload(browser, server_url, scan, municipality="141003",
                     issued_on=world.household.record.issued_on.isoformat())
    assert verdict == "MATCHES an issued certificate", browser.find_element(By.ID, "findings").text
    assert float(browser.find_element(By.ID, "score").text) >= 0.43
    for image_id in ("restored", "issued"):
        size = browser.execute_script("const i = document.getElementById(arguments[0]);"
                                      "return [i.naturalWidth, i.naturalHeight, i.complete];", image_id)
        assert size == [827, 1169, True]
    browser.save_screenshot(str(Path(tempfile.gettempdir()) / "bcl-verification-page.png"))

    # A scan of another certificate named by id: no match, and that certificate's front is not shown.
    verdict = upload(browser, server_url, scan, certificate_id="cert-wife")
    assert verdict == "NO MATCH"
    assert browser.find_elements(By.ID, "issued") == []
