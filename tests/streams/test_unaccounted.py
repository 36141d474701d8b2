"""Who is unaccounted for, end to end against real parts: the installed `bcl` in subprocesses (`bcl safety` and the
shelter terminals' staff entry, each terminal with its own SQLite queue), the disaster store on disk, the shipped
open data of the shelters. The ledger rows are written into the ledger's own tables (as tests/streams/
test_shelters.py does), the damage levels through the damage assessment's surveys, and the listed person through
the roster store as its processor applies a register record."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domain.disasters import declaration
from domain.evacuation_plan import evacuation_plan, supporter_of
from domain.japan_time import japan_date
from domain.safety import NOT_DISCLOSED
from sinks.disaster_ledger import put_dwellings, put_residents
from streams.platform import Platform
from tests.factories import make_resident
from tests.ledger_dwellings_factory import ledger_row
from tests.platforms import make_platform

BCL = Path(sys.executable).parent / "bcl"
ONAGAWA, TANABE = "045811", "302066"
SHELTER_A, SHELTER_B = "E0458100001111", "E0458100003111"  # 大沢安住集会所, 浦宿二区集会所 (shipped GSI data)
SHELTER_TANABE = "E3020600189201"  # 鮎川小学校
HANAKO, TARO, JIRO, UME = (f"{n:011d}" for n in (1, 2, 3, 4))  # 女川町: two of a 全壊 dwelling, one 準半壊, listed
KUMANO = f"{5:011d}"  # 田辺市, a 全壊 dwelling
WELFARE = "女川町社会福祉協議会"  # the recipient 花子 consented to
PEOPLE = {  # resident → (municipality, dwelling, names, birth date)
    HANAKO: (ONAGAWA, "D1", ("女川", "花子", "オナガワ", "ハナコ"), "1980-04-01"),
    TARO: (ONAGAWA, "D1", ("女川", "太郎", "オナガワ", "タロウ"), "1978-07-07"),
    JIRO: (ONAGAWA, "D2", ("女川", "次郎", "オナガワ", "ジロウ"), "1985-02-02"),
    UME: (ONAGAWA, "D3", ("牡鹿", "ウメ", "オシカ", "ウメ"), "1936-01-05"),
    KUMANO: (TANABE, "D9", ("熊野", "一郎", "クマノ", "イチロウ"), "1970-05-05"),
}


@dataclass
class World:
    data_dir: Path
    platform: Platform
    disaster_id: str
    env: dict[str, str]


def _ledger(platform: Platform, disaster_id: str) -> None:
    con = platform.disaster_store.connection
    with platform.disaster_store.transaction():
        put_dwellings(con, [(disaster_id, dwelling, code, f"宮城県牡鹿郡女川町鷲神浜{dwelling[-1]}", 38.44, 141.44)
                            for dwelling, code in (("D1", ONAGAWA), ("D2", ONAGAWA), ("D3", ONAGAWA), ("D9", TANABE))])
        put_residents(con, [ledger_row(
            disaster_id, code, resident, dwelling, family_name=family, given_name=given,
            family_name_kana=family_kana, given_name_kana=given_kana, birth_date=birth, sex="FEMALE",
            individual_number="123456789018", household_head_name=f"{family} {given}", household_number=f"H{resident}",
            current_address=f"住所 {resident}")
            for resident, (code, dwelling, (family, given, family_kana, given_kana), birth) in PEOPLE.items()])
        for code in (ONAGAWA, TANABE):
            con.execute("INSERT INTO ledger_builds VALUES (?, ?, 'csv', 0, 0, 0, 0)", (disaster_id, code))


@pytest.fixture
def world(tmp_path: Path) -> World:
    data_dir = tmp_path / "var"
    platform = make_platform(data_dir)
    now = dt.datetime.now(dt.UTC)
    platform.pki.initialise(now)  # the terminals' intake checks card certificates against it
    disaster = platform.disaster_store.declare(declaration(
        name="令和8年宮城県沖地震", kind="tsunami", municipality_codes=[ONAGAWA, TANABE],
        occurred_at=now - dt.timedelta(days=1), now=now), now)
    d = disaster.disaster_id
    assert platform.unaccounted  # every table it reads, made by their stores
    _ledger(platform, d)
    for dwelling, level in (("D1", "ZENKAI"), ("D2", "JUN_HANKAI"), ("D9", "ZENKAI")):
        platform.damage_assessment.survey(d, dwelling, surveyor="調査員", surveyed_on=None, now=now, level=level)
    # 牡鹿ウメ, 90 and alone: listed under the default criteria, through the roster store as its processor does.
    ume = make_resident(ONAGAWA, 4, household_number="HUME", family_name="牡鹿", given_name="ウメ",
                        family_name_kana="オシカ", given_name_kana="ウメ", birth_date=dt.date(1936, 1, 5))
    platform.evacuation_roster.apply([ume], [], japan_date(now))
    assert [p.resident_code for p in platform.evacuation_roster.listed(ONAGAWA)] == [UME]
    platform.disaster_ledger.set_staff_items(d, ONAGAWA, HANAKO, {"consent_recipient": WELFARE,
                                                                 "consent_on": japan_date(now).isoformat()},
                                             "佐藤", now)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning"}
    made = World(data_dir, platform, d, env)
    assert bcl(made, "shelter", "import").returncode == 0
    for shelter in (SHELTER_A, SHELTER_B, SHELTER_TANABE):
        assert bcl(made, "shelter", "open", d, shelter, "--staff", "佐藤").returncode == 0
    return made


def bcl(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), *args], capture_output=True, text=True, env=world.env, timeout=120)


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done
    return json.loads(done.stdout)


def refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode != 0, done
    assert done.stderr.startswith("error: ") and reason in done.stderr and "Traceback" not in done.stderr, done.stderr


def counts(world: World, code: str = ONAGAWA) -> dict[str, Any]:
    return ok(bcl(world, "safety", "unaccounted", world.disaster_id, "--municipality", code, "--json"))


def names(world: World, *filters: str, code: str = ONAGAWA) -> list[dict[str, Any]]:
    values = ok(bcl(world, "safety", "unaccounted", world.disaster_id, "--municipality", code, "--names", "--json",
                    *filters))
    return values["names"]["people"]


def terminal(world: World, terminal_id: str, shelter: str) -> str:
    ok_init = bcl(world, "shelter", "terminal", "init", "--terminal", terminal_id, "--disaster", world.disaster_id,
                  "--shelter", shelter)
    assert ok_init.returncode == 0, ok_init
    return terminal_id


def stay(world: World, action: str, terminal_id: str, resident: str) -> None:
    _, _, (_, _, family_kana, given_kana), birth = PEOPLE[resident]
    ok(bcl(world, "shelter", "terminal", action, "--terminal", terminal_id, "--kana", f"{family_kana} {given_kana}",
           "--birth-date", birth, "--staff", "受付", "--json"))


def audit(world: World, action: str) -> list[dict[str, Any]]:
    path = world.data_dir / "audit" / "personal-data-access.jsonl"
    return [e for e in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if e["action"] == action]


def test_damaged_dwellings_residents_and_check_ins_moves_and_check_outs(world: World) -> None:
    first = counts(world)
    assert (first["looked_for"], first["unaccounted"], first["unaccounted_by_category"]) == (
        3, 3, {"DAMAGED_DWELLING": 2, "LISTED": 1})
    people = {p["resident_code"]: p for p in names(world)}
    assert set(people) == {HANAKO, TARO, UME}  # 次郎's dwelling is 準半壊: not looked for
    assert people[HANAKO]["categories"] == ["DAMAGED_DWELLING"] and people[HANAKO]["name"] == "女川　花子"
    assert people[UME]["categories"] == ["LISTED"]
    assert [p["resident_code"] for p in names(world, "--category", "LISTED")] == [UME]
    assert {p["resident_code"] for p in names(world, "--town", "鷲神浜1")} == {HANAKO, TARO}  # their dwelling D1
    assert audit(world, "safety.names")[-1]["records"] == 2
    plain = bcl(world, "safety", "unaccounted", world.disaster_id, "--municipality", ONAGAWA, "--names")
    assert plain.returncode == 0, plain
    assert plain.stdout.startswith("looked for 3: unaccounted for 3 (damaged dwelling 2, listed 1)")
    assert f"{UME}  牡鹿　ウメ" in plain.stdout and "names 1-3 of 3:" in plain.stdout

    a, b = terminal(world, "TA", SHELTER_A), terminal(world, "TB", SHELTER_B)
    stay(world, "check-in", a, HANAKO)
    after = counts(world)
    assert (after["unaccounted"], after["sheltered"]) == (2, 1)
    assert HANAKO not in {p["resident_code"] for p in names(world)}
    [sheltered] = names(world, "--whereabouts", "SHELTERED")
    assert (sheltered["resident_code"], sheltered["shelter_id"]) == (HANAKO, SHELTER_A)

    stay(world, "check-in", b, HANAKO)  # she moves on to shelter B: still accounted for
    assert (counts(world)["unaccounted"], names(world, "--whereabouts", "SHELTERED")[0]["shelter_id"]) == (2, SHELTER_B)
    stay(world, "check-out", b, HANAKO)  # and leaves without checking in anywhere: unaccounted for again
    assert counts(world)["unaccounted"] == 3
    assert HANAKO in {p["resident_code"] for p in names(world)}


def test_an_evacuee_at_another_municipalitys_shelter_is_matched_to_the_home_ledger(world: World) -> None:
    stay(world, "check-in", terminal(world, "TT", SHELTER_TANABE), TARO)
    home = counts(world)
    assert (home["unaccounted"], home["sheltered"], home["sheltered_elsewhere"]) == (2, 0, 1)
    [elsewhere] = names(world, "--whereabouts", "SHELTERED_ELSEWHERE")
    assert (elsewhere["resident_code"], elsewhere["shelter_id"], elsewhere["shelter_municipality_code"]) == (
        TARO, SHELTER_TANABE, TANABE)
    host = counts(world, TANABE)
    assert (host["hosted_from_elsewhere"], host["looked_for"], host["unaccounted"]) == (1, 1, 1)
    # 田辺市's names are its own residents only: 熊野 of its 全壊 dwelling, not the evacuee of 女川町.
    assert [p["resident_code"] for p in names(world, "--whereabouts", "all", code=TANABE)] == [KUMANO]


def test_a_listed_person_confirmed_safe_leaves_the_list_and_bad_input(world: World) -> None:
    done = ok(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, UME, "--status", "safe", "--method",
                  "phoned", "--staff", "阿部", "--note", "長女宅に避難", "--json"))
    assert (done["status"], done["method"], done["recorded_by"]) == ("SAFE", "PHONED", "阿部")
    after = counts(world)
    assert (after["unaccounted"], after["unaccounted_by_category"]["LISTED"], after["confirmed"]["SAFE"]) == (
        2, 0, 1)
    [confirmed] = names(world, "--whereabouts", "CONFIRMED")
    assert (confirmed["resident_code"], confirmed["confirmed"], confirmed["confirmed_by"]) == (UME, "SAFE", "阿部")
    assert audit(world, "safety.confirm")[-1]["resident_code"] == UME

    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, UME, "--status", "INJURED", "--method",
                "VISITED", "--staff", "阿部"), "already confirmed SAFE")
    assert world.platform.unaccounted.confirmation_of(world.disaster_id, ONAGAWA, UME).confirmation.status == "SAFE"
    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, "99999999999", "--status", "SAFE",
                "--method", "PHONED", "--staff", "阿部"), "no resident '99999999999'")
    refused(bcl(world, "safety", "confirm", "no-such-disaster", ONAGAWA, TARO, "--status", "SAFE", "--method",
                "PHONED", "--staff", "阿部"), "no disaster 'no-such-disaster'")
    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, TARO, "--status", "FINE", "--method",
                "PHONED", "--staff", "阿部"), "--status")
    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, TARO, "--status", "SAFE", "--method",
                "EMAIL", "--staff", "阿部"), "--method")
    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, TARO, "--status", "SAFE", "--method",
                "PHONED", "--staff", "阿部", "--at", "2000-01-01T00:00"), "--at")
    refused(bcl(world, "safety", "unaccounted", "no-such-disaster", "--municipality", ONAGAWA),
            "no disaster 'no-such-disaster'")
    refused(bcl(world, "safety", "unaccounted", world.disaster_id, "--municipality", "131016"),
            "131016 is not a municipality of disaster")
    refused(bcl(world, "safety", "unaccounted", world.disaster_id, "--municipality", ONAGAWA, "--names",
                "--category", "PETS"), "--category")
    assert counts(world)["confirmed"] == {"SAFE": 1, "INJURED": 0, "DECEASED": 0}  # nothing else was recorded
    world.platform.disaster_store.close_disaster(world.disaster_id, None, dt.datetime.now(dt.UTC))
    refused(bcl(world, "safety", "confirm", world.disaster_id, ONAGAWA, TARO, "--status", "SAFE", "--method",
                "PHONED", "--staff", "阿部"), "is closed")


def test_the_plans_to_follow_are_the_listed_of_damaged_dwellings_not_yet_found(world: World) -> None:
    def to_follow() -> list[dict[str, Any]]:
        return ok(bcl(world, "safety", "plans", world.disaster_id, "--municipality", ONAGAWA, "--json"))["people"]

    assert to_follow() == []  # ウメ is listed, but her dwelling D3 is not surveyed damaged (花子's is: not listed)
    now = dt.datetime.now(dt.UTC)
    world.platform.damage_assessment.survey(world.disaster_id, "D3", surveyor="調査員", surveyed_on=None, now=now,
                                            level="ZENKAI")
    [ume] = to_follow()
    assert (ume["resident_code"], ume["categories"], ume["plan"]) == (UME, ["DAMAGED_DWELLING", "LISTED"], None)
    world.platform.evacuation_plans.set_plan(ONAGAWA, UME, evacuation_plan(
        ONAGAWA, supporters=[supporter_of("女川\u3000次郎", "近隣住民", "0225-54-0001")], shelter_id=SHELTER_A,
        route="裏の坂道から集会所へ", needs="車椅子"), by="阿部", now=now)
    [ume] = to_follow()
    assert ume["plan"]["supporters"] == [{"name": "女川\u3000次郎", "relation": "近隣住民", "phone": "0225-54-0001"}]
    assert (ume["plan"]["shelter_id"], ume["plan"]["needs"]) == (SHELTER_A, "車椅子")
    assert audit(world, "safety.plans")[-1]["records"] == 1
    text = bcl(world, "safety", "plans", world.disaster_id, "--municipality", ONAGAWA)
    assert text.returncode == 0 and "supporter 女川\u3000次郎 (近隣住民) 0225-54-0001" in text.stdout, text

    stay(world, "check-in", terminal(world, "TP", SHELTER_B), UME)  # found at another shelter than her plan's
    assert to_follow() == []
    refused(bcl(world, "safety", "plans", "no-such-disaster", "--municipality", ONAGAWA),
            "no disaster 'no-such-disaster'")


def inquiry(world: World, resident: str, inquirer: str) -> subprocess.CompletedProcess[str]:
    _, _, (_, _, family_kana, given_kana), birth = PEOPLE[resident]
    return bcl(world, "safety", "inquiry", world.disaster_id, ONAGAWA, "--kana", f"{family_kana}{given_kana}",
               "--birth-date", birth, "--inquirer", inquirer, "--json")


def test_an_inquiry_discloses_only_what_consent_allows(world: World) -> None:
    stay(world, "check-in", terminal(world, "TA", SHELTER_A), HANAKO)
    stay(world, "check-in", terminal(world, "TB", SHELTER_B), TARO)
    told = ok(inquiry(world, HANAKO, "女川町 社会福祉協議会"))  # 花子 consented to this recipient
    assert (told["disclosed"], told["whereabouts"], told["shelter"]) == (True, "SHELTERED", "大沢安住集会所")
    assert "大沢安住集会所" in told["answer"]

    nothing = {"disclosed": False, "answer": NOT_DISCLOSED}
    assert ok(inquiry(world, HANAKO, "報道機関")) == nothing  # not the recipient her consent names
    untold = inquiry(world, TARO, WELFARE)  # 太郎 gave no consent
    assert json.loads(untold.stdout) == nothing
    assert "浦宿" not in untold.stdout and TARO not in untold.stdout and "太郎" not in untold.stdout
    unknown = bcl(world, "safety", "inquiry", world.disaster_id, ONAGAWA, "--kana", "ダレモイナイ", "--birth-date",
                  "1900-01-01", "--inquirer", WELFARE, "--json")
    assert unknown.stdout == untold.stdout  # the answer does not tell whether someone is in the ledger
    entries = audit(world, "safety.inquiry")
    assert [e["disclosed"] for e in entries] == [True, False, False, False]
    refused(bcl(world, "safety", "inquiry", world.disaster_id, ONAGAWA, "--kana", "オナガワハナコ", "--birth-date",
                "1980-13-01", "--inquirer", WELFARE), "--birth-date")
    refused(bcl(world, "safety", "inquiry", world.disaster_id, ONAGAWA, "--kana", "オナガワハナコ", "--birth-date",
                "1980-04-01", "--inquirer", " "), "--inquirer")
