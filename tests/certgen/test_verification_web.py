"""The verification web page: in headless Chromium (Debian chromium + chromium-driver, driven by Selenium),
upload a valid PDF, a tampered PDF, a degraded scan, and files that are no certificate, and read the
verdicts and messages the page shows, in Japanese and in English; through aiohttp's client, what a browser
will not send (oversized, empty, no file, no CSRF token, broken forms, decompression bombs) and the
limits, the latter against the page running in a process of its own (its memory is then its own)."""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from certgen.keys import KeyPool
from certgen.verification import MAX_SCAN_PIXELS, VerificationContext
from certgen.verification_limits import VerificationLimits
from certgen.verification_request import MAX_UPLOAD_BYTES
from certgen.verification_web import SECURITY_HEADERS, make_app
from tests.certgen.issued_world import IssuedWorld, build_issued_world, degraded_scan_png
from tests.web_fixtures import headless_chromium, served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> IssuedWorld:
    return build_issued_world(tmp_path_factory.mktemp("verification-web"), key_pool)


@pytest.fixture(scope="module")
def server_url(world: IssuedWorld) -> Iterator[str]:
    """The page served by aiohttp on 127.0.0.1 from a thread with its own event loop."""
    audit: list[tuple[str, int, str | None]] = []
    # Every test here posts from 127.0.0.1: the per-client rate limit is tested on a server of its own.
    app = make_app(VerificationContext([world.seal_root], world.archive, world.key_of,
                                       lambda *entry: audit.append(entry)), VerificationLimits(burst=1000))
    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium() as driver:
        yield driver


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


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found[1]


async def _open_form(session: aiohttp.ClientSession, url: str) -> str:
    """GET the page as a browser does: its cookie goes into the session's jar, its token is returned."""
    async with session.get(url + "/") as response:
        return _token(await response.text())


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: cookies of 127.0.0.1


async def _upload(session: aiohttp.ClientSession, url: str, data: bytes | None, filename: str = "upload.bin",
                  token: str | None = None, content_type: str = "application/octet-stream",
                  **fields: str) -> tuple[int, str, dict[str, str]]:
    form = aiohttp.FormData(default_to_multipart=True)  # as the page's form (enctype multipart), file or not
    if token is not None:
        form.add_field("csrf_token", token)
    for name, value in fields.items():
        form.add_field(name, value)
    if data is not None:
        form.add_field("file", data, filename=filename, content_type=content_type)
    async with session.post(url + "/verify", data=form) as response:
        return response.status, await response.text(), dict(response.headers)


def _post(url: str, data: bytes | None, filename: str = "upload.bin", **fields: str) -> tuple[int, str]:
    """One upload from a fresh visitor of the page (form fetched first: cookie and token)."""
    async def post() -> tuple[int, str]:
        async with _session() as session:
            token = await _open_form(session, url)
            status, text, _ = await _upload(session, url, data, filename, token, **({"issuer": "横浜市長"} | fields))
            return status, text
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


# --- the limits and defences of the page (issue 8, item 10) -------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _png(width: int, height: int, bit_depth: int, colour: int, rows: bytes | None) -> bytes:
    """A PNG written by hand: any header (even one claiming more pixels than its data), rows as given."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bit_depth, colour, 0, 0, 0])
    body = _png_chunk(b"IDAT", zlib.compress(rows, 9)) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + body + _png_chunk(b"IEND", b"")


def pixel_bomb() -> bytes:
    """The issue's upload: 6300×6300 16-bit RGB, white; a few hundred KB that decode to 238 MB (and a
    scan pipeline ran it at 0.9 GB)."""
    row = b"\x00" + b"\xff" * (6300 * 6)
    return _png(6300, 6300, 16, 2, row * 6300)


def _image(mode: str, fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


def _bad_inputs(world: IssuedWorld) -> list[tuple[str, bytes, str, str]]:
    """(name, bytes, filename, what the one-line message says): each a 4xx, never a 500."""
    png = _image("RGB", "PNG", (300, 200))
    return [
        ("garbage", np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes(), "x.bin",
         "neither a PDF nor an image"),
        ("truncated PNG", png[: len(png) // 2], "cut.png", "damaged or truncated"),
        ("truncated PDF", world.household.pdf[: len(world.household.pdf) // 2], "cut.pdf", "not a readable PDF"),
        ("PDF header and junk", b"%PDF-1.7\n" + bytes(range(256)) * 4, "junk.pdf", "not a readable PDF"),
        ("JSON sent as a file", b'{"certificate": "genuine"}', "c.json", "it looks like a text file"),
        ("HTML page", b"<!DOCTYPE html><html><body>certificate</body></html>", "c.html", "a web page"),
        ("pixel bomb", pixel_bomb(), "bomb.png", f"at most {MAX_SCAN_PIXELS // 1_000_000} megapixels"),
        ("header bomb: 100000×100000 claimed", _png(100_000, 100_000, 8, 2, None), "huge.png",
         "too large for a scan of one page"),
        ("16-bit grey, nothing on it", _image("I;16", "PNG"), "grey16.png", "code at the bottom of the back"),
        ("CMYK JPEG", _image("CMYK", "JPEG"), "cmyk.jpg", "code at the bottom of the back"),
        ("palette GIF", _image("P", "GIF"), "p.gif", "code at the bottom of the back"),
        ("one pixel", _image("RGB", "PNG", (1, 1)), "dot.png", "code at the bottom of the back"),
    ]


def test_bad_input_gets_a_4xx_with_one_line_never_a_500(server_url: str, world: IssuedWorld) -> None:
    async def sweep() -> list[tuple[str, int, str]]:
        results = []
        async with _session() as session:
            token = await _open_form(session, server_url)
            for name, data, filename, _ in _bad_inputs(world):
                status, page, _ = await _upload(session, server_url, data, filename, token)
                results.append((name, status, page))
            # Not the page's form at all: JSON, a multipart body that breaks off, a multipart without boundary.
            for name, body, content_type in (
                    ("JSON body", b'{"file": "x"}', "application/json"),
                    ("broken multipart", b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
                                         b"\r\n\x00\x01", "multipart/form-data; boundary=XYZ"),
                    ("multipart without boundary", b"--\r\n", "multipart/form-data")):
                async with session.post(server_url + "/verify", data=body,
                                        headers={"Content-Type": content_type}) as response:
                    results.append((name, response.status, await response.text()))
        return results

    expected = {name: message for name, _, _, message in _bad_inputs(world)}
    for name, status, page in asyncio.run(sweep()):
        assert status == 400, (name, status)
        error = re.search(r'<p id="error">(.*?)</p>', page, re.S)
        assert error is not None, name
        text = re.sub(r"<[^>]+>", " ", error[1])
        assert "Traceback" not in page and "BytesIO" not in page and "Error:" not in text, (name, text)
        if name in expected:
            assert expected[name] in html.unescape(text), (name, text)


def test_a_post_without_a_valid_csrf_token_is_refused(server_url: str, world: IssuedWorld) -> None:
    async def attempts() -> list[tuple[str, int, str]]:
        pdf = world.household.pdf
        results = []
        async with _session() as other:  # the token of another visitor (an attacker's own)
            stolen = await _open_form(other, server_url)
        async with _session() as session:
            status, page, _ = await _upload(session, server_url, pdf, "c.pdf")  # no cookie, no token
            results.append(("neither", status, page))
            token = await _open_form(session, server_url)
            for name, value in (("no token", None), ("another visitor's token", stolen), ("forged", "0" * 64)):
                status, page, _ = await _upload(session, server_url, pdf, "c.pdf", value)
                results.append((name, status, page))
            status, page, _ = await _upload(session, server_url, pdf, "c.pdf", token)
            results.append(("valid", status, page))
        async with aiohttp.ClientSession() as cookieless:  # the token, but not the cookie (another site's form)
            status, page, _ = await _upload(cookieless, server_url, pdf, "c.pdf", token)
            results.append(("token without cookie", status, page))
        return results

    for name, status, page in asyncio.run(attempts()):
        if name == "valid":
            assert status == 200 and 'class="verdict ok"' in page, page
        else:
            assert status == 403, (name, status)
            assert "the form has expired or was not sent from this page" in page and "ページを開き直して" in page


def test_every_answer_carries_the_security_headers(server_url: str) -> None:
    async def answers() -> list[tuple[str, int, dict[str, str]]]:
        async with _session() as session:
            results = []
            for path in ("/", "/no-such-page"):
                async with session.get(server_url + path) as response:
                    results.append((path, response.status, dict(response.headers)))
            status, _, headers = await _upload(session, server_url, b"x", "x.txt")  # refused: no token
            results.append(("POST /verify", status, headers))
            return results

    for what, status, headers in asyncio.run(answers()):
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (what, status, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp


def test_the_hashed_style_applies_under_the_policy(browser: webdriver.Chrome, server_url: str) -> None:
    browser.get_log("browser")  # drop what earlier tests logged
    browser.get(server_url + "/")
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(31, 78, 121, 1)"
    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == []


@contextmanager
def server_process(world: IssuedWorld, **limits: object) -> Iterator[tuple[str, int]]:
    """The page in a process of its own (tests.certgen.verification_server_process): its URL and pid."""
    process = subprocess.Popen([sys.executable, "-m", "tests.certgen.verification_server_process",
                                str(world.data_dir), json.dumps(limits)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def high_water_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found
    return int(found[1]) / 1024


async def _timed_post(url: str, data: bytes, filename: str, **fields: str) -> tuple[int, str, dict[str, str], float]:
    async with _session() as session:
        token = await _open_form(session, url)
        start = time.perf_counter()
        status, page, headers = await _upload(session, url, data, filename, token, **fields)
        return status, page, headers, time.perf_counter() - start


def test_a_pixel_bomb_is_refused_from_its_header_in_bounded_memory(world: IssuedWorld) -> None:
    bomb = pixel_bomb()
    with server_process(world, burst=100) as (url, pid):
        warm = asyncio.run(_timed_post(url, _image("RGB", "PNG", (300, 200)), "warm.png"))
        assert warm[0] == 400  # imports and first allocations done
        before = high_water_mb(pid)
        status, page, _, seconds = asyncio.run(_timed_post(url, bomb, "bomb.png"))
        assert status == 400 and "6300×6300 px" in page and "at most 25 megapixels" in page
        assert seconds < 1.0, seconds

        async def eight() -> list[tuple[int, str, dict[str, str], float]]:
            return await asyncio.gather(*(_timed_post(url, bomb, f"bomb{n}.png") for n in range(8)))

        assert [result[0] for result in asyncio.run(eight())] == [400] * 8
        grown = high_water_mb(pid) - before
    print(f"pixel bomb: refused in {seconds * 1000:.0f} ms; nine bombs raised the server's peak by {grown:.0f} MB")
    assert grown < 64, grown  # before the limit, one bomb took 0.77 GB and eight at once 4.3 GB


def test_scans_at_once_run_bounded_and_a_pdf_check_does_not_wait_behind_them(world: IssuedWorld,
                                                                              tmp_path: Path) -> None:
    scan = degraded_scan_png(world.household.pdf, tmp_path)
    # A deadline far above eight scans one after another, even on a loaded machine: this is about the pools.
    with server_process(world, burst=100, scan_timeout_seconds=600) as (url, pid):
        status, page, _, one_scan = asyncio.run(_timed_post(url, scan, "scan.png"))
        assert status == 200 and 'class="verdict ok"' in page
        before = high_water_mb(pid)

        async def scans_and_a_pdf() -> tuple[list[tuple[int, float]], tuple[int, float, float]]:
            start = time.perf_counter()

            async def scan_done() -> tuple[int, float]:
                result = await _timed_post(url, scan, "scan.png")
                return result[0], time.perf_counter() - start

            scans = [asyncio.create_task(scan_done()) for _ in range(8)]
            await asyncio.sleep(0.5)  # the scans are in: one running, the others waiting for the scan pool
            status, _, _, pdf_seconds = await _timed_post(url, world.household.pdf, "c.pdf")
            pdf_done = time.perf_counter() - start
            return await asyncio.gather(*scans), (status, pdf_seconds, pdf_done)

        scans, (pdf_status, pdf_seconds, pdf_done) = asyncio.run(scans_and_a_pdf())
        grown = high_water_mb(pid) - before
    last_scan = max(done for _, done in scans)
    print(f"one scan {one_scan:.2f} s; 8 at once done after {last_scan:.1f} s; a PDF check meanwhile "
          f"{pdf_seconds:.2f} s; server peak +{grown:.0f} MB")
    assert [status for status, _ in scans] == [200] * 8
    assert pdf_status == 200 and pdf_seconds < 2.0 and pdf_done < last_scan / 2, (pdf_seconds, last_scan)
    assert grown < 400, grown  # the scans ran in the scan pool, not all at once


def test_a_slow_scan_times_out_and_holds_its_place_until_it_ends(world: IssuedWorld, tmp_path: Path) -> None:
    scan = degraded_scan_png(world.household.pdf, tmp_path)
    with server_process(world, burst=100, scan_queue=1, scan_timeout_seconds=0.3) as (url, _):
        status, page, _, seconds = asyncio.run(_timed_post(url, scan, "scan.png"))
        assert status == 504 and "did not finish within 0.3 s" in page and "0.3秒以内に終わりませんでした" in page
        assert seconds < 1.0
        # The timed-out scan still runs (a thread cannot be stopped) and holds the one place in the queue.
        status, page, headers, _ = asyncio.run(_timed_post(url, scan, "scan.png"))
        assert status == 503 and headers.get("Retry-After") == "5" and "the verification service is busy" in page
        # PDF checks have their own pool.
        assert asyncio.run(_timed_post(url, world.household.pdf, "c.pdf"))[0] == 200


def test_a_client_over_its_rate_gets_429_with_retry_after(world: IssuedWorld) -> None:
    with server_process(world, burst=3, refill_seconds=60) as (url, _):
        async def four() -> list[tuple[int, str, dict[str, str]]]:
            async with _session() as session:
                token = await _open_form(session, url)
                return [await _upload(session, url, world.household.pdf, "c.pdf", token) for _ in range(4)]

        results = asyncio.run(four())
    assert [status for status, _, _ in results] == [200, 200, 200, 429]
    _, page, headers = results[3]
    assert 55 <= int(headers["Retry-After"]) <= 60
    assert "too many verifications from your address" in page and "秒ほど待ってから" in page


def test_an_upload_that_never_finishes_gets_408(world: IssuedWorld) -> None:
    with server_process(world, upload_timeout_seconds=0.5) as (url, _):
        async def stalled() -> tuple[float, bytes]:
            port = int(url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
                         b"Content-Type: multipart/form-data; boundary=XYZ\r\n\r\n--XYZ\r\n")
            await writer.drain()
            start = time.perf_counter()
            answer = await asyncio.wait_for(reader.readuntil(b"</html>"), 10)  # the rest of the body never comes
            writer.close()
            return time.perf_counter() - start, answer

        seconds, answer = asyncio.run(stalled())
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert 0.4 < seconds < 3 and b"did not arrive within 0.5 s" in answer
