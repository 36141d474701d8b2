"""The roster, plan and shelter pages in headless Chromium (Debian chromium + chromium-driver, driven by Selenium)
over the real stores of a data dir (tests.streams.roster_world): from the navigation, an extraction by criterion
with its counts first; a listed person's consent recorded with its date, then withdrawn, the consent task closed;
a telephone number; the 個別避難計画 entered with the form and kept; the shelters' capacity by day and night
entered, a shelter opened with its button, people checked in by a terminal shown as the live headcount, the
occupancy and a larger point on the map, then the shelter closed with its button (everyone checked out); a staff
member of 女川町 opening a 田辺市 person by URL is told not found."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from domain.japan_time import japan_date
from domain.shelters import Period, period_of
from tests.platforms import make_platform
from tests.streams.roster_world import (
    SHELTER_TANABE,
    TANABE_ALONE,
    TANABE_PHYSICAL,
    RosterWorld,
    build_roster_world,
    check_in,
)
from tests.streams.test_staff_web_browser import sign_in, wait_text
from tests.web_fixtures import headless_chromium, served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> RosterWorld:
    return build_roster_world(tmp_path_factory.mktemp("roster-browser") / "data")


@pytest.fixture(scope="module")
def url(world: RosterWorld) -> Iterator[str]:
    platform = make_platform(world.data_dir)
    with served(platform.staff_web()) as base:
        yield base
    platform.disaster_store.close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium() as driver:
        driver.set_page_load_timeout(60)
        driver.implicitly_wait(10)
        yield driver


def set_value(browser: webdriver.Chrome, element_id: str, value: str) -> None:
    """A date control's typing order follows the browser's locale: its value is set as the form sends it."""
    browser.execute_script("document.getElementById(arguments[0]).value = arguments[1]", element_id, value)


def test_roster_search_consent_phone_and_plan(world: RosterWorld, url: str, browser: webdriver.Chrome) -> None:
    sign_in(browser, url, "tanabe.sato")
    browser.find_element(By.LINK_TEXT, "避難行動要支援者名簿").click()
    wait_text(browser, "matches", "2")
    Select(browser.find_element(By.ID, "criterion")).select_by_value("PHYSICAL")
    browser.find_element(By.ID, "search").click()
    wait_text(browser, "matches", "1")
    assert "身体障害者手帳1級" in browser.find_element(By.ID, "roster").text
    browser.find_element(By.ID, "tasks").click()
    tasks = browser.find_element(By.ID, "task-list").text
    assert "牟婁" in tasks and "熊野" in tasks  # both newly listed: ask both for consent

    browser.get(f"{url}/roster?name=ムロ")
    wait_text(browser, "matches", "1")
    browser.find_element(By.LINK_TEXT, "牟婁\u3000ハナ").click()
    wait_text(browser, "p-consent", "未確認")
    assert "75歳以上の一人暮らし" in browser.find_element(By.ID, "p-reason").text
    day = (japan_date(dt.datetime.now(dt.UTC)) - dt.timedelta(days=3)).isoformat()
    Select(browser.find_element(By.ID, "decision")).select_by_value("GIVEN")
    set_value(browser, "decided_on", day)
    browser.find_element(By.ID, "record-consent").click()
    wait_text(browser, "p-consent", f"同意（{day}）")
    assert "未処理のタスクなし" in browser.find_element(By.ID, "person-tasks").text
    Select(browser.find_element(By.ID, "decision")).select_by_value("WITHDRAWN")
    browser.find_element(By.ID, "record-consent").click()  # no date: today
    wait_text(browser, "p-consent", f"撤回（{japan_date(dt.datetime.now(dt.UTC)).isoformat()}）")
    browser.get(f"{url}/roster/tasks")
    tasks = browser.find_element(By.ID, "task-list").text
    assert "牟婁" not in tasks and "熊野" in tasks

    browser.get(f"{url}/roster/p/{TANABE_ALONE}")
    browser.find_element(By.ID, "phone").send_keys("0739-22-5678")
    browser.find_element(By.ID, "save-phone").click()
    wait_text(browser, "p-phone", "0739-22-5678")
    field = browser.find_element(By.ID, "phone")
    field.clear()
    field.send_keys("電話して")
    browser.find_element(By.ID, "save-phone").click()
    assert "not a telephone number" in browser.find_element(By.ID, "error").text

    browser.get(f"{url}/roster/p/{TANABE_ALONE}")
    assert browser.find_element(By.ID, "no-plan")
    browser.find_element(By.ID, "supporter_name_1").send_keys("牟婁\u3000一郎")
    browser.find_element(By.ID, "supporter_relation_1").send_keys("近隣住民")
    browser.find_element(By.ID, "supporter_phone_1").send_keys("090-0000-0001")
    browser.find_element(By.ID, "supporter_name_2").send_keys("民生委員\u3000佐藤")
    browser.find_element(By.ID, "supporter_relation_2").send_keys("民生委員")
    Select(browser.find_element(By.ID, "shelter")).select_by_value(SHELTER_TANABE)
    browser.find_element(By.ID, "route").send_keys("自宅から坂を上って学校の体育館へ")
    browser.find_element(By.ID, "needs").send_keys("歩行が遅い、補聴器")
    browser.find_element(By.ID, "save-plan").click()
    assert browser.find_element(By.ID, "saved").is_displayed()
    assert browser.find_element(By.ID, "plan-pdf").get_attribute("href").endswith(f"/roster/p/{TANABE_ALONE}/plan.pdf")
    assert browser.find_element(By.ID, "supporter_name_2").get_attribute("value") == "民生委員\u3000佐藤"
    platform = make_platform(world.data_dir)
    stored = platform.evacuation_plans.plan("302066", TANABE_ALONE, actor="test")
    platform.disaster_store.close()
    assert stored is not None and stored.updated_by == "tanabe.sato"
    assert [s.name for s in stored.plan.supporters] == ["牟婁\u3000一郎", "民生委員\u3000佐藤"]
    assert stored.plan.shelter.shelter_id == SHELTER_TANABE and stored.plan.needs == "歩行が遅い、補聴器"

    # Another municipality's member: the same URL is not found.
    browser.find_element(By.ID, "signout").click()
    sign_in(browser, url, "onagawa.abe")
    browser.get(f"{url}/roster/p/{TANABE_PHYSICAL}")
    assert "見つかりません" in browser.find_element(By.ID, "error").text
    assert "熊野" not in browser.page_source


def test_shelters_capacity_open_headcount_map_close(world: RosterWorld, url: str, browser: webdriver.Chrome) -> None:
    d = world.staff.disaster_id
    sign_in(browser, url, "tanabe.ito")
    browser.find_element(By.LINK_TEXT, "避難所").click()
    browser.find_element(By.ID, f"day-{SHELTER_TANABE}").send_keys("40")
    browser.find_element(By.ID, f"night-{SHELTER_TANABE}").send_keys("20")
    browser.find_element(By.ID, f"capacity-{SHELTER_TANABE}").click()
    assert browser.find_element(By.ID, "saved").is_displayed()
    row = browser.find_element(By.ID, f"entry-{SHELTER_TANABE}")
    assert row.find_element(By.CLASS_NAME, "capacity").text == "昼 40・夜 20"

    browser.find_element(By.LINK_TEXT, "令和8年紀伊半島沖地震").click()
    wait_text(browser, "open-count", "0")
    points = browser.find_elements(By.CSS_SELECTOR, "#shelter-map circle.shelter")
    platform = make_platform(world.data_dir)
    assert len(points) == len(platform.shelters.shelters("302066"))
    platform.disaster_store.close()
    browser.find_element(By.ID, f"open-{SHELTER_TANABE}").click()
    wait_text(browser, "open-count", "1")
    row = browser.find_element(By.ID, f"shelter-{SHELTER_TANABE}")
    assert row.find_element(By.CLASS_NAME, "headcount").text == "0"
    small = float(browser.find_element(By.ID, f"point-{SHELTER_TANABE}").get_attribute("r"))

    checked_in = check_in(world.data_dir, d, SHELTER_TANABE, n=15)
    browser.refresh()
    wait_text(browser, "total-headcount", str(len(checked_in)))
    row = browser.find_element(By.ID, f"shelter-{SHELTER_TANABE}")
    capacity = 20 if period_of(dt.datetime.now(dt.UTC)) is Period.NIGHT else 40
    assert row.find_element(By.CLASS_NAME, "headcount").text == "15"
    assert row.find_element(By.CLASS_NAME, "capacity").text == str(capacity)
    assert row.find_element(By.CLASS_NAME, "occupancy").text == f"{15 / capacity:.0%}"
    point = browser.find_element(By.ID, f"point-{SHELTER_TANABE}")
    assert point.get_attribute("data-headcount") == "15"
    assert point.get_attribute("data-occupancy") == ("high" if capacity == 20 else "some")
    assert float(point.get_attribute("r")) > small

    browser.find_element(By.ID, f"close-{SHELTER_TANABE}").click()
    wait_text(browser, "open-count", "0")
    assert "閉鎖" in browser.find_element(By.ID, f"shelter-{SHELTER_TANABE}").find_element(By.CLASS_NAME, "state").text
    assert browser.find_element(By.ID, "total-headcount").text == "0"
    platform = make_platform(world.data_dir)
    assert platform.shelters.evacuees(d, shelter_id=SHELTER_TANABE) == []
    platform.disaster_store.close()
