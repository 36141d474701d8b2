"""The staff pages in headless Chromium (Debian chromium + chromium-driver, driven by Selenium), served by
`bcl disaster staff-web` in a process of its own over a data dir whose ledgers were built from the backup: sign
in, search, a household's page, a staff item saved and still there after the server is SIGKILLed and started
again; a wrong password refused; a form sent without its CSRF token refused; a staff member of 045811 opening a
302066 household by URL refused and audited; the area page previews and applies a polygon; a household's support
amounts shown, a payment recorded with the form, and a re-survey's amount shown beside the one applied for."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from domain.damage_levels import DamageLevel
from domain.livelihood_recovery_support import Rebuild, livelihood_support
from domain.support_payments import Statement
from sinks.staff_scope import household_of
from tests.platforms import make_platform
from tests.streams.card_application import apply_with_card, uncarded
from tests.streams.staff_world import ONAGAWA, PASSWORD, TANABE, StaffWorld, build_staff_world
from tests.web_fixtures import headless_chromium

BCL = Path(sys.executable).parent / "bcl"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> StaffWorld:
    return build_staff_world(tmp_path_factory.mktemp("staff-browser") / "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`bcl disaster staff-web` on a fixed port, started and SIGKILLed by the test."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
        self._env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(BCL), "disaster", "staff-web", "--port", str(self.port)], env=self._env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode() if self.process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the staff pages did not start listening")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(world: StaffWorld) -> Iterator[Server]:
    s = Server(world.data_dir)
    s.start()
    yield s
    if s.process is not None and s.process.poll() is None:
        s.kill()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium() as driver:
        driver.set_page_load_timeout(60)
        driver.implicitly_wait(10)  # a click that submits a form returns before the next page may have loaded
        yield driver


def sign_in(browser: webdriver.Chrome, url: str, login: str, password: str = PASSWORD) -> None:
    browser.get(f"{url}/signin")
    browser.find_element(By.ID, "login").send_keys(login)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "submit").click()
    # The click returns before the sign-in's answer has come: a page asked for at once could still be answered
    # as to nobody. The answer has come when the header names the member or the sign-in page shows its error.
    def answered(driver: webdriver.Chrome) -> bool:
        if driver.find_elements(By.ID, "error"):
            return True
        return any(login in member.text for member in driver.find_elements(By.ID, "member"))

    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(answered)


def wait_text(browser: webdriver.Chrome, element_id: str, expected: str) -> None:
    """Until the element of that id shows `expected` (the page after a submit replaces the one before). While the
    page is being replaced, Chromium can answer a read of the old page's element with a stale reference or with an
    inspector error ("Node with given id does not belong to the document"): both are waited out."""
    def shown(driver: webdriver.Chrome) -> bool:
        return bool(driver.find_element(By.ID, element_id).text == expected)

    try:
        WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(shown)
    except TimeoutException:
        raise AssertionError(f"#{element_id} shows {browser.find_element(By.ID, element_id).text!r}, "
                             f"not {expected!r}") from None


def audit(world: StaffWorld, action: str, actor: str) -> list[dict[str, object]]:
    path = world.data_dir / "audit" / "personal-data-access.jsonl"
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [e for e in entries if e["action"] == action and e["actor"] == actor]


def test_search_household_item_survives_sigkill(world: StaffWorld, server: Server,
                                                 browser: webdriver.Chrome) -> None:
    p = make_platform(world.data_dir)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    p.disaster_store.close()
    person = rows[0]
    sign_in(browser, server.url, "tanabe.sato", "a wrong password here")
    assert "パスワードが違います" in browser.find_element(By.ID, "error").text
    sign_in(browser, server.url, "tanabe.sato")
    assert "tanabe.sato" in browser.find_element(By.ID, "member").text
    browser.find_element(By.LINK_TEXT, "令和8年紀伊半島沖地震").click()
    wait_text(browser, "matches", str(len(rows)))  # the counts first: the whole ledger
    browser.find_element(By.ID, "kana").send_keys(person["family_name_kana"])
    browser.find_element(By.ID, "search").click()
    same = sum(r["family_name_kana"] == person["family_name_kana"] for r in rows)
    wait_text(browser, "matches", str(same))
    browser.find_element(By.LINK_TEXT, household_of(person)).click()
    wait_text(browser, "household", household_of(person))
    code = person["resident_code"]
    browser.find_element(By.ID, f"contact-{code}").send_keys("0739-22-1234")
    browser.find_element(By.ID, f"vulnerable_reason-{code}").send_keys("人工透析")
    browser.find_element(By.ID, f"save-{code}").click()
    assert browser.find_element(By.ID, "saved").is_displayed()
    household_url = browser.current_url.split("?")[0]

    server.kill()  # acknowledged above: must survive the loss of the process
    server.start()
    browser.get(household_url)  # the session is server-side: still signed in
    assert browser.find_element(By.ID, f"contact-{code}").get_attribute("value") == "0739-22-1234"
    assert browser.find_element(By.ID, f"vulnerable_reason-{code}").get_attribute("value") == "人工透析"

    # A form whose CSRF token was taken out (as another site's form would be) is refused, nothing saved.
    browser.execute_script("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    field = browser.find_element(By.ID, f"contact-{code}")
    field.clear()
    field.send_keys("forged")
    browser.find_element(By.ID, f"save-{code}").click()
    assert "このページから送信されていません" in browser.find_element(By.ID, "error").text
    browser.get(household_url)
    assert browser.find_element(By.ID, f"contact-{code}").get_attribute("value") == "0739-22-1234"


def test_other_municipality_by_url_is_refused_and_audited(world: StaffWorld, server: Server,
                                                          browser: webdriver.Chrome) -> None:
    p = make_platform(world.data_dir)
    household = household_of(p.disaster_ledger.residents(world.disaster_id, TANABE)[0])
    p.disaster_store.close()
    sign_in(browser, server.url, "onagawa.abe")
    assert ONAGAWA in browser.find_element(By.ID, "member").text
    browser.get(f"{server.url}/d/{world.disaster_id}/m/{TANABE}/h/{quote(household, safe='')}")
    assert "見つかりません" in browser.find_element(By.ID, "error").text
    assert "世帯員" not in browser.page_source and "household" not in {e.get_attribute("id") for e in
                                                                    browser.find_elements(By.CSS_SELECTOR, "[id]")}
    refused = audit(world, "staff.refused", "onagawa.abe")
    assert any(e.get("household_number") == household and e.get("requested_municipality") == TANABE
               for e in refused)


def test_area_page_previews_and_applies_a_polygon(world: StaffWorld, server: Server, browser: webdriver.Chrome,
                                                  tmp_path: Path) -> None:
    p = make_platform(world.data_dir)
    dwellings = p.disaster_ledger.dwellings(world.disaster_id, TANABE)
    residents = p.disaster_ledger.residents(world.disaster_id, TANABE)
    p.disaster_store.close()
    # A box around the dwellings of the western half.
    lons = sorted(d.longitude for d in dwellings)
    split = lons[len(lons) // 2]
    lats = [d.latitude for d in dwellings]
    west, south, north = lons[0] - 0.001, min(lats) - 0.001, max(lats) + 0.001
    inside = [d for d in dwellings if d.longitude < split]
    geojson = tmp_path / "zone.geojson"
    geojson.write_text(json.dumps({"type": "Polygon", "coordinates": [[
        [west, south], [split - 1e-7, south], [split - 1e-7, north], [west, north], [west, south]]]}))

    sign_in(browser, server.url, "tanabe.sato")
    browser.get(f"{server.url}/d/{world.disaster_id}/area")
    points = browser.find_elements(By.CSS_SELECTOR, "#map circle")
    assert len(points) == len(dwellings)
    browser.find_element(By.ID, "geojson").send_keys(str(geojson))
    Select(browser.find_element(By.ID, "area-level")).select_by_value("ZENKAI")
    browser.find_element(By.ID, "overwrite").click()
    browser.find_element(By.ID, "preview").click()
    wait_text(browser, "preview-dwellings", str(len(inside)))
    households = {household_of(r) for r in residents if r["dwelling_id"] in {d.dwelling_id for d in inside}}
    assert browser.find_element(By.ID, "preview-households").text == str(len(households))
    assert browser.find_elements(By.CSS_SELECTOR, "#map polygon.area")
    browser.find_element(By.ID, "area-reason").send_keys("津波浸水区域")
    browser.find_element(By.ID, "apply").click()
    assert browser.find_element(By.ID, "applied").is_displayed()
    browser.get(f"{server.url}/d/{world.disaster_id}/area")
    levels = [c.get_attribute("data-level") for c in browser.find_elements(By.CSS_SELECTOR, "#map circle")]
    assert levels.count("ZENKAI") == len(inside)
    p = make_platform(world.data_dir)
    zenkai = [a for a in p.damage_assessment.assessments(world.disaster_id) if a.level.value == "ZENKAI"]
    p.disaster_store.close()
    assert {a.dwelling_id for a in zenkai} == {d.dwelling_id for d in inside}
    assert audit(world, "staff.area.apply", "tanabe.sato")


def test_household_support_paid_on_the_page_and_a_re_survey_shown(world: StaffWorld, server: Server,
                                                                  browser: webdriver.Chrome) -> None:
    p = make_platform(world.data_dir)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    person = uncarded(p, [r for r in rows if r["dwelling_id"] != rows[0]["dwelling_id"]])
    application = apply_with_card(p, world.disaster_id, person, "LIVELIHOOD_RECOVERY_SUPPORT")
    now = dt.datetime.now(dt.UTC)
    p.disaster_applications.accept(application.application_id, "tanabe.sato", now)
    p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=now, level="ZENKAI", loss_ratio=None, reason="調査")
    granted = p.support_payments.record_amount(application.application_id, Statement(rebuild=Rebuild.BUILD),
                                               "tanabe.ito", now)
    p.disaster_store.close()
    household = household_of(person)
    procedure = "LIVELIHOOD_RECOVERY_SUPPORT"

    sign_in(browser, server.url, "tanabe.sato")
    browser.get(f"{server.url}/d/{world.disaster_id}/m/{TANABE}/h/{quote(household, safe='')}")
    wait_text(browser, f"support-applied-{procedure}", f"{granted.amount:,}円")
    assert browser.find_element(By.ID, f"support-outstanding-{procedure}").text == f"{granted.amount:,}円"
    Select(browser.find_element(By.ID, "pay-procedure")).select_by_value(procedure)
    browser.find_element(By.ID, "pay-amount").send_keys("1000000")
    # The date control's typing order follows the browser's locale: its value is set as the form sends it.
    browser.execute_script("document.getElementById('pay-date').value = arguments[0]", dt.date.today().isoformat())
    browser.find_element(By.ID, "pay-reference").send_keys("振込-0001")
    browser.find_element(By.ID, "pay").click()
    assert browser.find_element(By.ID, "saved").is_displayed()
    wait_text(browser, f"support-paid-{procedure}", "1,000,000円")
    assert browser.find_element(By.ID, f"support-outstanding-{procedure}").text == f"{granted.amount - 1_000_000:,}円"
    assert "振込-0001" in browser.find_element(By.ID, "payments").text
    assert "tanabe.ito" in browser.find_element(By.ID, "support-history").text  # who recorded the amount

    # A re-survey lowers the level: the amount applied for stays, the page shows what the current level gives.
    p = make_platform(world.data_dir)
    p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=dt.datetime.now(dt.UTC), level="CHUKIBO_HANKAI", loss_ratio=None, reason="再調査")
    p.disaster_store.close()
    browser.refresh()
    wait_text(browser, "level", "中規模半壊")
    assert browser.find_element(By.ID, f"support-applied-{procedure}").text == f"{granted.amount:,}円"
    size = granted.household_size
    lowered = livelihood_support(DamageLevel.CHUKIBO_HANKAI, Rebuild.BUILD, size).total
    assert browser.find_element(By.ID, f"support-current-{procedure}").text == f"{lowered:,}円（申請時と異なる）"
    assert audit(world, "staff.support.pay", "tanabe.sato")
