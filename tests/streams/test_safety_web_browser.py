"""The unaccounted-for page in headless Chromium (Debian chromium + chromium-driver, driven by Selenium) over the real
stores of a data dir (tests.streams.roster_world: ledgers built from the backup, the list applied through the roster
store, the shipped shelters), with one 田辺市 dwelling surveyed 全壊: from the navigation, the counts first, the
names filtered by category and town, a listed person's safety confirmed with the form (the counts shrink, the
confirmation shown with who recorded it), a resident of the damaged dwelling checked in by a terminal leaving the
list; a staff member of 女川町 opening 田辺市's view by URL is told not found and sees no name; a POST without its CSRF
token and a confirmation of another municipality's resident write nothing; every read is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from certgen.verification_csrf import FIELD
from domain.japan_time import japan_date
from domain.shelter_stays import StayAction, StayEvent, TerminalEvent, TokenKind
from tests.factories import make_resident
from tests.platforms import make_platform
from tests.streams.roster_world import SHELTER_TANABE, TANABE_ALONE, TANABE_PHYSICAL, RosterWorld, build_roster_world
from tests.streams.staff_world import TANABE
from tests.streams.test_roster_web_browser import browser  # noqa: F401  (headless Chromium, per test)
from tests.streams.test_staff_web_browser import sign_in, wait_text
from tests.streams.test_staff_web_isolation import client, page_token
from tests.streams.test_staff_web_isolation import sign_in as sign_in_client
from tests.web_fixtures import served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> RosterWorld:
    made = build_roster_world(tmp_path_factory.mktemp("safety-browser") / "data")
    platform = make_platform(made.data_dir)
    now = dt.datetime.now(dt.UTC)
    d = made.staff.disaster_id
    households = [r for r in platform.disaster_ledger.residents(d, TANABE) if r["dwelling_id"]]
    dwelling = households[0]["dwelling_id"]
    platform.damage_assessment.survey(d, dwelling, surveyor="調査員", surveyed_on=None, now=now, level="ZENKAI")
    platform.shelters.open(d, SHELTER_TANABE, "佐藤", now)
    platform.disaster_store.close()
    return made


def damaged_residents(world: RosterWorld) -> list[dict[str, Any]]:
    platform = make_platform(world.data_dir)
    d = world.staff.disaster_id
    [dwelling] = {a.dwelling_id for a in platform.damage_assessment.assessments(d)}
    rows = [r for r in platform.disaster_ledger.residents(d, TANABE) if r["dwelling_id"] == dwelling]
    platform.disaster_store.close()
    return rows


@pytest.fixture(scope="module")
def url(world: RosterWorld) -> Iterator[str]:
    platform = make_platform(world.data_dir)
    with served(platform.staff_web()) as base:
        yield base
    platform.disaster_store.close()


def audit(world: RosterWorld, action: str, actor: str) -> list[dict[str, Any]]:
    path = world.data_dir / "audit" / "personal-data-access.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    return [e for e in lines if e["action"] == action and e["actor"] == actor]


def confirmations(world: RosterWorld) -> int:
    platform = make_platform(world.data_dir)
    (n,) = platform.disaster_store.connection.execute("SELECT count(*) FROM safety_confirmations").fetchone()
    platform.disaster_store.close()
    return int(n)


def check_in(world: RosterWorld, resident: dict[str, Any]) -> None:
    """A terminal's staff entry of the resident at 田辺市's shelter, through the intake's store."""
    platform = make_platform(world.data_dir)
    now = dt.datetime.now(dt.UTC)
    event = TerminalEvent(StayEvent(str(uuid.uuid4()), StayAction.CHECK_IN, SHELTER_TANABE, now, "test-terminal", 1),
                          world.staff.disaster_id, TokenKind.STAFF,
                          {"kana": resident["family_name_kana"] + resident["given_name_kana"],
                           "birth_date": str(resident["birth_date"]), "staff": "受付"})
    [receipt] = platform.shelters.receive([event], now)
    platform.disaster_store.close()
    assert receipt.status.value == "APPLIED", receipt


def test_counts_names_filters_and_a_confirmation(world: RosterWorld, url: str,
                                                 browser: webdriver.Chrome) -> None:  # noqa: F811
    damaged = damaged_residents(world)
    sign_in(browser, url, "tanabe.ito")
    browser.find_element(By.LINK_TEXT, "安否確認").click()
    browser.find_element(By.LINK_TEXT, "令和8年紀伊半島沖地震").click()
    wait_text(browser, "count-listed", "2")
    assert browser.find_element(By.ID, "count-damaged").text == str(len(damaged))
    assert browser.find_element(By.ID, "count-unaccounted").text == str(len(damaged) + 2)
    assert browser.find_element(By.ID, "names-total").text == str(len(damaged) + 2)
    assert audit(world, "safety.names", "tanabe.ito")[-1]["records"] == len(damaged) + 2

    Select(browser.find_element(By.ID, "category")).select_by_value("LISTED")
    browser.find_element(By.ID, "show").click()
    wait_text(browser, "names-total", "2")
    assert {r.get_attribute("id") for r in browser.find_elements(By.CSS_SELECTOR, "#names tr[id]")} == {
        f"person-{TANABE_ALONE}", f"person-{TANABE_PHYSICAL}"}
    browser.find_element(By.ID, "town").send_keys("今福一丁目")
    browser.find_element(By.ID, "show").click()
    wait_text(browser, "names-total", "1")
    assert browser.find_element(By.ID, f"person-{TANABE_ALONE}").is_displayed()

    Select(browser.find_element(By.ID, f"status-{TANABE_ALONE}")).select_by_value("SAFE")
    Select(browser.find_element(By.ID, f"method-{TANABE_ALONE}")).select_by_value("VISITED")
    browser.find_element(By.ID, f"note-{TANABE_ALONE}").send_keys("自宅で無事")
    browser.find_element(By.ID, f"confirm-{TANABE_ALONE}").click()
    assert browser.find_element(By.ID, "saved").is_displayed()
    wait_text(browser, "count-listed", "1")
    assert browser.find_element(By.ID, "count-safe").text == "1"
    assert not browser.find_elements(By.ID, f"person-{TANABE_ALONE}")  # the unaccounted for are listed
    Select(browser.find_element(By.ID, "whereabouts")).select_by_value("CONFIRMED")
    browser.find_element(By.ID, "show").click()
    row = browser.find_element(By.ID, f"person-{TANABE_ALONE}")
    assert "無事" in row.text and "訪問" in row.text and "tanabe.ito" in row.text
    assert audit(world, "safety.confirm", "tanabe.ito")[-1]["resident_code"] == TANABE_ALONE

    check_in(world, damaged[0])
    browser.get(f"{url}/d/{world.staff.disaster_id}/safety")
    wait_text(browser, "count-damaged", str(len(damaged) - 1))
    assert browser.find_element(By.ID, "count-sheltered").text == "1"
    assert not browser.find_elements(By.ID, f"person-{damaged[0]['resident_code']}")

    # Another municipality's member: the same URL is not found, and no name is shown.
    browser.find_element(By.ID, "signout").click()
    sign_in(browser, url, "onagawa.abe")
    assert "onagawa.abe" in browser.find_element(By.ID, "member").text  # signed in before the next page is asked
    browser.get(f"{url}/d/{world.staff.tanabe_only_id}/safety")
    assert "見つかりません" in browser.find_element(By.ID, "error").text
    browser.get(f"{url}/d/{world.staff.disaster_id}/safety?whereabouts=all")
    assert "牟婁" not in browser.page_source and "熊野" not in browser.page_source
    assert audit(world, "staff.refused", "onagawa.abe")


def test_another_municipalitys_confirmation_and_a_post_without_csrf_write_nothing(world: RosterWorld,
                                                                                    url: str) -> None:
    d = world.staff.disaster_id
    before = confirmations(world)

    async def scenario() -> list[int]:
        statuses = []
        async with client() as s:
            assert (await sign_in_client(s, url, "onagawa.abe")).status == 303
            token = await page_token(s, url)
            form = {"status": "SAFE", "method": "PHONED", "note": ""}
            async with s.post(f"{url}/d/{d}/safety/{TANABE_PHYSICAL}/confirm", data={**form, FIELD: token},
                              allow_redirects=False) as r:
                statuses.append(r.status)
            async with s.post(f"{url}/d/{world.staff.tanabe_only_id}/safety/{TANABE_PHYSICAL}/confirm",
                              data={**form, FIELD: token}, allow_redirects=False) as r:
                statuses.append(r.status)
        async with client() as s:
            assert (await sign_in_client(s, url, "tanabe.kato")).status == 303
            async with s.post(f"{url}/d/{d}/safety/{TANABE_PHYSICAL}/confirm", data=form,
                              allow_redirects=False) as r:
                statuses.append(r.status)
            token = await page_token(s, url)
            async with s.get(f"{url}/d/{d}/safety", params={"category": "PETS"}) as r:
                statuses.append(r.status)
            async with s.post(f"{url}/d/{d}/safety/{TANABE_PHYSICAL}/confirm",
                              data={"status": "FINE", "method": "PHONED", FIELD: token}, allow_redirects=False) as r:
                statuses.append(r.status)
        return statuses

    assert asyncio.run(scenario()) == [404, 404, 403, 400, 400]
    assert confirmations(world) == before
    refused = audit(world, "staff.refused", "onagawa.abe")
    assert any(e["requested"] == f"resident {TANABE_PHYSICAL!r}" for e in refused)


def test_the_plans_to_follow_link_the_listed_of_a_damaged_dwelling_to_their_page(
        world: RosterWorld, url: str, browser: webdriver.Chrome) -> None:  # noqa: F811
    platform = make_platform(world.data_dir)
    d, now = world.staff.disaster_id, dt.datetime.now(dt.UTC)
    surveyed = {a.dwelling_id for a in platform.damage_assessment.assessments(d)}
    person = next(r for r in platform.disaster_ledger.residents(d, TANABE)
                  if r["dwelling_id"] and r["dwelling_id"] not in surveyed)
    platform.damage_assessment.survey(d, person["dwelling_id"], surveyor="調査員", surveyed_on=None, now=now,
                                      level="ZENKAI")
    # Listed by the roster as its processor would: 95 and alone in a household of her own.
    platform.evacuation_roster.apply([make_resident(
        TANABE, resident_code=person["resident_code"], household_number="HPLAN", family_name=person["family_name"],
        given_name=person["given_name"], family_name_kana=person["family_name_kana"],
        given_name_kana=person["given_name_kana"], birth_date=dt.date(1931, 3, 3))], [], japan_date(now))
    platform.disaster_store.close()
    code = person["resident_code"]
    sign_in(browser, url, "tanabe.ito")
    browser.get(f"{url}/d/{d}/safety")
    browser.find_element(By.ID, "plans-link").click()
    row = browser.find_element(By.ID, f"plan-{code}")
    assert "個別避難計画なし" in row.text and person["family_name"] in row.text
    assert f"plan-{TANABE_ALONE}" not in browser.page_source  # listed, but not of a damaged dwelling
    assert audit(world, "safety.plans", "tanabe.ito")
    row.find_element(By.TAG_NAME, "a").click()
    assert browser.current_url.endswith(f"/roster/p/{code}")

    browser.find_element(By.ID, "signout").click()
    sign_in(browser, url, "onagawa.abe")
    browser.get(f"{url}/d/{d}/safety/plans")  # the disaster is 女川町's too: its own list, without 田辺市's people
    assert browser.find_element(By.ID, "plans-total").text == "0" and f"plan-{code}" not in browser.page_source
    browser.get(f"{url}/d/{world.staff.tanabe_only_id}/safety/plans")
    assert "見つかりません" in browser.find_element(By.ID, "error").text
