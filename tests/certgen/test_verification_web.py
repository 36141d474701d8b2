"""The verification web page in headless Chromium (Debian chromium + chromium-driver, driven by Selenium):
upload a valid PDF, a tampered PDF, a degraded scan named by the issuer and date as printed, and files
that are no certificate; read the verdicts and messages the page shows, in Japanese and in English.
Uploads a browser will not make (oversized, empty, no file) go through aiohttp's client."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from certgen.keys import KeyPool
from certgen.verification import VerificationContext
from certgen.verification_request import MAX_UPLOAD_BYTES
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
        browser.find_element(By.ID, name).send_keys(value)
    browser.find_element(By.ID, "submit").click()
    verdict = WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "verdict")))
    return verdict.text


def test_the_page_is_japanese_first(browser: webdriver.Chrome, server_url: str) -> None:
    browser.get(server_url + "/")
    assert browser.title == "証明書の検証 — Certificate verification"
    assert browser.execute_script("return [document.documentElement.lang, document.characterSet]") == ["ja", "UTF-8"]
    labels = ["".join(label.text.split()) for label in browser.find_elements(By.TAG_NAME, "label")]
    assert labels == ["ファイルFile", "発行者Issuer", "発行日Issuedate", "証明書IDCertificateid"]
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "公印の横にある市区町村長名（例: 横浜市長）" in page and "令和8年11月17日" in page
    assert "municipality code (6 digits)" not in page  # what the front does not print is not asked for
    assert browser.find_element(By.ID, "issued_on").get_attribute("type") == "text"  # typed as printed
    browser.save_screenshot(str(Path(tempfile.gettempdir()) / "bcl-verification-form.png"))


def test_the_page_shows_the_verdicts(browser: webdriver.Chrome, server_url: str, world: IssuedWorld,
                                     tmp_path: Path) -> None:
    good = tmp_path / "certificate.pdf"
    good.write_bytes(world.household.pdf)
    verdict = upload(browser, server_url, good)
    assert verdict.startswith("有効") and "VALID" in verdict
    findings = browser.find_element(By.ID, "findings").text
    assert "cert-household" in findings and "BCLが発行した証明書です" in findings

    tampered = bytearray(world.household.pdf)
    tampered[len(tampered) // 2] ^= 0x01
    bad = tmp_path / "tampered.pdf"
    bad.write_bytes(bytes(tampered))
    verdict = upload(browser, server_url, bad)
    assert verdict.startswith("無効") and "INVALID" in verdict
    findings = browser.find_element(By.ID, "findings").text
    assert "altered after sealing" in findings and "not in the issuance record" in findings
    assert "改変されています" in findings and "発行記録にありません" in findings

    # A scan named as the paper prints it: the mayor's line and the era date.
    scan = tmp_path / "scan.png"
    scan.write_bytes(degraded_scan_png(world.household.pdf, tmp_path))
    verdict = upload(browser, server_url, scan, issuer="横浜市長", issued_on="令和8年11月21日")
    assert verdict.startswith("有効") and "VALID" in verdict, browser.find_element(By.ID, "findings").text
    assert "証明書 cert-household の1枚目と一致します" in browser.find_element(By.ID, "findings").text
    assert float(browser.find_element(By.ID, "score").text) >= 0.43
    for image_id in ("restored", "issued"):
        size = browser.execute_script("const i = document.getElementById(arguments[0]);"
                                      "return [i.naturalWidth, i.naturalHeight, i.complete];", image_id)
        assert size == [827, 1169, True]
    browser.save_screenshot(str(Path(tempfile.gettempdir()) / "bcl-verification-page.png"))

    # A scan of another certificate named by id: no match, and that certificate's front is not shown.
    verdict = upload(browser, server_url, scan, certificate_id="cert-wife")
    assert verdict.startswith("不一致") and "NO MATCH" in verdict
    assert browser.find_elements(By.ID, "issued") == []


def test_a_file_that_is_no_certificate_gets_a_clear_message(browser: webdriver.Chrome, server_url: str,
                                                             tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("買い物メモ: 牛乳、卵\n", encoding="utf-8")
    verdict = upload(browser, server_url, notes, issuer="横浜市長", issued_on="令和8年11月21日")
    assert verdict.startswith("検証できません") and "Cannot verify" in verdict
    error = browser.find_element(By.ID, "error").text
    assert "「notes.txt」はPDFでも画像でもありません（テキストファイルのようです）" in error
    assert "“notes.txt” is neither a PDF nor an image: it looks like a text file" in error
    assert "BytesIO" not in browser.page_source and "Traceback" not in browser.page_source
    # The form is there again with what was typed, to choose another file.
    assert browser.find_element(By.ID, "issuer").get_attribute("value") == "横浜市長"
    assert browser.find_element(By.ID, "file").get_attribute("aria-invalid") == "true"
    browser.save_screenshot(str(Path(tempfile.gettempdir()) / "bcl-verification-error.png"))


def test_a_date_that_is_not_one_names_the_field(browser: webdriver.Chrome, server_url: str, world: IssuedWorld,
                                                tmp_path: Path) -> None:
    scan = tmp_path / "scan.png"
    scan.write_bytes(degraded_scan_png(world.household.pdf, tmp_path))
    verdict = upload(browser, server_url, scan, issuer="横浜市長", issued_on="平成31年5月1日")
    assert verdict.startswith("検証できません")
    error = browser.find_element(By.ID, "error").text
    assert "発行日: 「平成31年5月1日」は存在しない日付です" in error
    assert "issue date: «平成31年5月1日» does not exist" in error
    field = browser.find_element(By.ID, "issued_on")
    assert field.get_attribute("aria-invalid") == "true" and field.get_attribute("value") == "平成31年5月1日"


def _post(url: str, data: bytes | None, filename: str = "upload.bin") -> tuple[int, str]:
    async def post() -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("issuer", "横浜市長")
        if data is not None:
            form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        async with aiohttp.ClientSession() as session, session.post(url + "/verify", data=form) as response:
            return response.status, await response.text()
    return asyncio.run(post())


def test_uploads_a_browser_will_not_make(server_url: str) -> None:
    status, page = _post(server_url, b"%PDF-1.7\n" + bytes(MAX_UPLOAD_BYTES), "huge.pdf")
    assert status == 413
    assert "「huge.pdf」が大きすぎます（上限 21 MiB）" in page and "“huge.pdf” is too large (more than 21 MiB)" in page
    status, page = _post(server_url, b"", "empty.png")
    assert status == 400 and "「empty.png」は空です（0バイト）" in page and "is empty (0 bytes)" in page
    status, page = _post(server_url, None)
    assert status == 400 and "ファイルが選択されていません" in page and "no file was chosen" in page
    assert '<html lang="ja">' in page and '<meta charset="utf-8">' in page
