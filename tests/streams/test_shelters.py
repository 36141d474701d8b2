"""Shelters and check-in/check-out end to end against real parts: the installed `bcl` in subprocesses (the staff's
commands and the shelter terminals, each terminal with its own SQLite queue), virtual My Number cards from the
platform's test PKI in the vpcd reader of the real pcscd, the disaster store on disk, the shipped open data, and
the embedded cluster (the relay publishes ShelterStay events). The ledger rows are written into the ledger's own
tables (as tests/streams/test_disaster_applications.py does) with the cards' certificate serials.

A terminal killed mid-batch is killed at crash points (infra.crash_points: os._exit, as hard as SIGKILL, at the
exact moment: inside the intake's transaction, and after the intake's commit before the terminal's receipt), and
a sync of three batches is SIGKILLed while it runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from certgen.user_certificates import CertificateKind
from domain.disasters import declaration, to_millisecond
from domain.shelter_stays import StayAction, TokenKind
from infra import topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS
from infra.pcscd import PcscDaemon
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.shelter_terminal import TerminalQueue
from kiosk_sim.vpcd import inserted
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.disaster_ledger import put_dwellings, put_residents
from streams.platform import Platform
from tests.kiosk_sim.conftest import pcsc_daemon  # noqa: F401  (the session's pcscd with the vpcd driver)
from tests.ledger_dwellings_factory import ledger_row
from tests.platforms import make_platform
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"
SERDE = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.SHELTER_STAYS])
ONAGAWA, TANABE = "045811", "302066"
PIN = "1234"
# The shelters are opened this long before a test starts, so that a test can record events at times of its choosing
# (on a terminal's queue) that are all in the past when it reads the occupancy "now".
OPENED_BEFORE = dt.timedelta(hours=3)
SHELTER_A, SHELTER_B = "E0458100001111", "E0458100003111"  # 大沢安住集会所, 浦宿二区集会所 (shipped GSI data)
HEADER = ("municipality_code,shelter_id,name,address,lat,lon,kind,hazard_flood,hazard_landslide,hazard_storm_surge,"
          "hazard_earthquake,hazard_tsunami,hazard_fire,hazard_inland_flood,hazard_volcano,capacity")


@dataclass
class World:
    data_dir: Path
    platform: Platform
    disaster_id: str
    env: dict[str, str]
    hanako: JpkiCard  # R0001's card
    stranger: JpkiCard  # a valid card of nobody in the ledger
    opened_at: dt.datetime  # when the fixture opened shelters A and B (OPENED_BEFORE its start)


def _card(platform: Platform, serial: str, now: dt.datetime) -> JpkiCard:
    issued = platform.pki.issue_card(serial, CertificateKind.CARD, now)
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    return JpkiCard(auth=CardKey(issued.key, der), auth_pin=PIN)


def _ledger_resident(platform: Platform, disaster_id: str, code: str, resident: str, names: tuple[str, str, str, str],
                     birth: str, serial: str = "") -> None:
    family, given, family_kana, given_kana = names
    con = platform.disaster_store.connection
    with platform.disaster_store.transaction():
        put_dwellings(con, [(disaster_id, f"D-{resident}", code, f"住所 {resident}", 38.44, 141.44)])
        put_residents(con, [ledger_row(
            disaster_id, code, resident, f"D-{resident}", family_name=family, given_name=given,
            family_name_kana=family_kana, given_name_kana=given_kana, birth_date=birth, sex="FEMALE",
            individual_number="123456789018", jpki_serials=serial, household_head_name=f"{family} {given}")])


@pytest.fixture
def world(cluster: ClusterHandle, tmp_path: Path) -> World:
    data_dir = tmp_path / "var"
    platform = make_platform(data_dir, cluster)
    now = dt.datetime.now(dt.UTC)
    platform.pki.initialise(now)
    disaster = platform.disaster_store.declare(declaration(
        name="令和8年宮城県沖地震", kind="tsunami", municipality_codes=[ONAGAWA, TANABE],
        occurred_at=now - dt.timedelta(days=1), now=now), now)
    hanako, stranger = _card(platform, "00000000000b0001", now), _card(platform, "00000000000b0002", now)
    platform.shelters  # noqa: B018 - the ledger's and the shelters' tables
    d = disaster.disaster_id
    _ledger_resident(platform, d, ONAGAWA, "R0001", ("女川", "花子", "オナガワ", "ハナコ"), "1980-04-01",
                     "00000000000b0001")
    _ledger_resident(platform, d, ONAGAWA, "R0002", ("女川", "太郎", "オナガワ", "タロウ"), "1950-07-07")
    # Two people of two municipalities with the same reading and birth date: a staff entry cannot tell them apart.
    _ledger_resident(platform, d, ONAGAWA, "R0003", ("鈴木", "一郎", "スズキ", "イチロウ"), "1960-01-01")
    _ledger_resident(platform, d, TANABE, "R0003", ("鈴木", "一朗", "スズキ", "イチロウ"), "1960-01-01")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning",
            "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}
    made = World(data_dir, platform, d, env, hanako, stranger, to_millisecond(now - OPENED_BEFORE))
    assert bcl(made, "import").returncode == 0
    for shelter in (SHELTER_A, SHELTER_B):
        assert bcl(made, "open", d, shelter, "--staff", "佐藤", "--at", made.opened_at.isoformat()).returncode == 0
    return made


def bcl(world: World, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "shelter", *args], capture_output=True, text=True, env=world.env | extra_env,
                          timeout=120)


def terminal(world: World, terminal_id: str, shelter: str) -> str:
    done = bcl(world, "terminal", "init", "--terminal", terminal_id, "--disaster", world.disaster_id,
               "--shelter", shelter)
    assert done.returncode == 0, done
    return terminal_id


def stay(world: World, action: str, terminal_id: str, *token: str, offline: bool = False,
         **extra_env: str) -> subprocess.CompletedProcess[str]:
    return bcl(world, "terminal", action, "--terminal", terminal_id, *token, *(["--offline"] if offline else []),
               "--json", **extra_env)


def staff_entry(kana: str, birth: str) -> tuple[str, ...]:
    return ("--kana", kana, "--birth-date", birth, "--staff", "佐藤")


TARO = staff_entry("おながわ たろう", "1950-07-07")


def headcounts(world: World, at: dt.datetime | None = None) -> dict[str, int]:
    done = bcl(world, "occupancy", world.disaster_id, "--json", *([] if at is None else ["--at", at.isoformat()]))
    assert done.returncode == 0, done
    return {s["shelter_id"]: s["headcount"] for s in json.loads(done.stdout)["shelters"]}


def where(world: World, resident: str, code: str = ONAGAWA) -> str | None:
    current = [s for s in world.platform.shelters.stays_of(world.disaster_id, code, resident)
               if s.checked_out_at is None]
    return current[0].shelter_id if current else None


def stay_events(world: World) -> list[dict[str, Any]]:
    return [SERDE.decode(e.value) for e in world.platform.disaster_store.unpublished(10_000)
            if e.topic == topics.SHELTER_STAYS]


def refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# -- the open data -------------------------------------------------------------------------------------------------


def test_the_shipped_shelters_and_a_malformed_municipality_file(world: World, tmp_path: Path) -> None:
    listed = json.loads(bcl(world, "list", "--municipality", ONAGAWA, "--json").stdout)["shelters"]
    assert len(listed) == 41 and {s["kind"] for s in listed} == {"emergency_site", "designated_shelter"}
    good = f"{ONAGAWA},M-1,女川町第二体育館,宮城県女川町女川1-1,38.445,141.447,designated_shelter,,,,,,,,,300"
    bad = tmp_path / "own.csv"
    bad.write_text("\n".join([HEADER, good, good.replace("M-1", "M-2").replace("38.445", "141.4")]) + "\n")
    refused(bcl(world, "import", str(bad), "--municipality", ONAGAWA), "line 3, column lat")
    assert len(world.platform.shelters.shelters(ONAGAWA)) == 41  # nothing of the file was imported
    other = tmp_path / "other.csv"
    other.write_text("\n".join([HEADER, good.replace(ONAGAWA, TANABE)]) + "\n")
    refused(bcl(world, "import", str(other), "--municipality", ONAGAWA),
            f"line 2, column municipality_code: {TANABE} is not {ONAGAWA}")
    bad.write_text("\n".join([HEADER, good]) + "\n")
    assert bcl(world, "import", str(bad), "--municipality", ONAGAWA).returncode == 0
    [own] = [e for e in world.platform.shelters.shelters(ONAGAWA) if e.shelter.shelter_id == "M-1"]
    assert own.shelter.published_capacity == 300


def test_capacity_by_day_and_by_night(world: World) -> None:
    assert bcl(world, "capacity", SHELTER_A, "--day", "40", "--night", "20", "--staff", "佐藤").returncode == 0
    refused(bcl(world, "capacity", SHELTER_A, "--day", "40", "--night", "0", "--staff", "佐藤"), "night capacity")
    assert stay(world, "check-in", terminal(world, "T1", SHELTER_A), *TARO).returncode == 0
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    later = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(12), dt.timezone(dt.timedelta(hours=9)))
    for at, period, capacity in [(later, "DAY", 40), (later.replace(hour=20), "NIGHT", 20)]:
        done = bcl(world, "occupancy", world.disaster_id, "--at", at.isoformat(), "--json")
        [a] = [s for s in json.loads(done.stdout)["shelters"] if s["shelter_id"] == SHELTER_A]
        assert (a["headcount"], a["period"], a["capacity"], a["occupancy"]) == (1, period, capacity, 1 / capacity)


# -- tokens and refusals -------------------------------------------------------------------------------------------


def test_card_check_in_and_out_published(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    t1 = terminal(world, "T1", SHELTER_A)
    with inserted(world.hanako):
        done = stay(world, "check-in", t1, "--card", "--pin", PIN)
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["status"] == "APPLIED"
    assert headcounts(world)[SHELTER_A] == 1 and where(world, "R0001") == SHELTER_A
    with inserted(world.stranger):
        refused(stay(world, "check-in", t1, "--card", "--pin", PIN), "of no resident in this disaster's register")
    # A card made outside JPKI (another PKI) with a certificate naming 花子's serial: its key signs, its
    # certificate does not chain to the JPKI root.
    other = make_platform(world.data_dir.parent / "other", None)
    other.pki.initialise(dt.datetime.now(dt.UTC))
    with inserted(_card(other, "00000000000b0001", dt.datetime.now(dt.UTC))):
        refused(stay(world, "check-in", t1, "--card", "--pin", PIN), "not a valid JPKI one")
    with inserted(world.hanako):
        refused(stay(world, "check-in", t1, "--card", "--pin", "9999"), "PIN")
        assert stay(world, "check-out", t1, "--card", "--pin", PIN).returncode == 0
    assert headcounts(world)[SHELTER_A] == 0 and where(world, "R0001") is None

    relayed = subprocess.run([str(BCL), "disaster", "relay", "--until-published"], capture_output=True, text=True,
                             env=world.env, timeout=120)
    assert relayed.returncode == 0, relayed
    events = [SERDE.decode(m.value()) for m in read_topic(world.env["BCL_BOOTSTRAP_SERVERS"], topics.SHELTER_STAYS)]
    mine = [e for e in events if e["disaster_id"] == world.disaster_id]
    assert [(e["action"], e["token_kind"], e["resident_code"], e["current_shelter_id"]) for e in mine] == [
        ("CHECK_IN", "CARD", "R0001", SHELTER_A), ("CHECK_OUT", "CARD", "R0001", None)]
    assert "花子" not in json.dumps(mine, default=str) and "ハナコ" not in json.dumps(mine, default=str)
    # The stranger's card was refused, kept with its reason (the terminal was told), and never published.
    [(_, shelter, reason), (_, _, forged)] = world.platform.shelters.refused(world.disaster_id)
    assert shelter == SHELTER_A and "no resident" in reason and "JPKI" in forged


def test_registration_qr_and_staff_entry(world: World, tmp_path: Path) -> None:
    t1 = terminal(world, "T1", SHELTER_A)
    slip = tmp_path / "slip.png"
    assert bcl(world, "pass", world.disaster_id, ONAGAWA, "R0001", "--out", str(slip)).returncode == 0
    refused(bcl(world, "pass", world.disaster_id, ONAGAWA, "R9999", "--out", str(slip.with_suffix(".x.png"))),
            "no resident")
    assert stay(world, "check-in", t1, "--qr-image", str(slip)).returncode == 0
    assert where(world, "R0001") == SHELTER_A
    refused(stay(world, "check-in", t1, "--qr", "BCL-SHELTER-1.eyJkIjoiMSJ9.AAAA"), "not issued by this system")

    assert stay(world, "check-in", t1, *staff_entry("ｵﾅｶﾞﾜ ﾀﾛｳ", "1950-07-07")).returncode == 0
    assert where(world, "R0002") == SHELTER_A
    refused(stay(world, "check-in", t1, *staff_entry("スズキ イチロウ", "1960-01-01")), "2 people")
    refused(stay(world, "check-in", t1, *staff_entry("ヤマダ ハナコ", "1960-01-01")), "no one")
    # A check-in twice is refused and changes nothing; so is a check-out without a check-in.
    refused(stay(world, "check-in", t1, *TARO), "already checked in")
    refused(stay(world, "check-out", terminal(world, "T2", SHELTER_B), *TARO), "no check-in")
    assert headcounts(world) == {SHELTER_A: 2, SHELTER_B: 0}
    refused(bcl(world, "terminal", "init", "--terminal", "T9", "--disaster", world.disaster_id,
                "--shelter", "E0000000000000"), "no shelter 'E0000000000000'")


# -- terminals offline, moves, closing, crashes ------------------------------------------------------------------


def test_offline_terminal_synced_a_check_out_before_its_check_in_and_a_move(world: World) -> None:
    offline, online, other = terminal(world, "T1", SHELTER_A), terminal(world, "T2", SHELTER_A), \
        terminal(world, "T3", SHELTER_B)
    queued = stay(world, "check-in", offline, *TARO, offline=True)
    assert queued.returncode == 0 and json.loads(queued.stdout)["status"] == "QUEUED"
    assert stay(world, "check-in", offline, *staff_entry("オナガワ ハナコ", "1980-04-01"), offline=True).returncode == 0
    assert headcounts(world)[SHELTER_A] == 0  # nothing reached the intake yet
    # 太郎 leaves through the online terminal: its check-in is still on the offline one.
    refused(stay(world, "check-out", online, *TARO), "no check-in")
    # 花子 moves on to shelter B.
    assert stay(world, "check-in", other, *staff_entry("オナガワ ハナコ", "1980-04-01")).returncode == 0
    assert where(world, "R0001") == SHELTER_B

    synced = bcl(world, "terminal", "sync", "--terminal", offline, "--json")
    assert synced.returncode == 0, synced
    totals = json.loads(synced.stdout)
    assert (totals["APPLIED"], totals["REFUSED"], totals["waiting"]) == (2, 0, 0)
    # 太郎's check-out is now applied after his check-in; 花子's stay at A ended when she checked in at B.
    [taro] = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0002")
    assert taro.checked_out_at is not None and taro.ended_by == "CHECK_OUT"
    hanako = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0001")
    assert [(s.shelter_id, s.ended_by) for s in hanako] == [(SHELTER_A, "MOVED"), (SHELTER_B, None)]
    assert headcounts(world) == {SHELTER_A: 0, SHELTER_B: 1}
    assert [(e.shelter_id, e.resident_code) for e in world.platform.shelters.evacuees(world.disaster_id)] == [
        (SHELTER_B, "R0001")]
    last = stay_events(world)[-1]
    assert (last["terminal_id"], last["terminal_sequence"], last["current_shelter_id"]) == ("T1", 2, SHELTER_B)


def test_closing_a_shelter_checks_everyone_out(world: World) -> None:
    t1 = terminal(world, "T1", SHELTER_A)
    assert stay(world, "check-in", t1, *TARO).returncode == 0
    assert stay(world, "check-in", t1, *staff_entry("オナガワ ハナコ", "1980-04-01"), offline=True).returncode == 0
    closed = bcl(world, "close", world.disaster_id, SHELTER_A, "--staff", "佐藤")
    assert closed.returncode == 0 and "1 checked out" in closed.stdout, closed
    assert headcounts(world)[SHELTER_A] == 0 and where(world, "R0002") is None
    # A check-in made offline before the closing ends at the closing; one made after it is refused.
    assert stay(world, "check-in", t1, *TARO, offline=True).returncode == 0
    synced = json.loads(bcl(world, "terminal", "sync", "--terminal", t1, "--json").stdout)
    assert (synced["APPLIED"], synced["REFUSED"]) == (1, 1)
    [hanako] = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0001")
    assert hanako.ended_by == "SHELTER_CLOSED"
    [taro] = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0002")
    assert taro.ended_by == "SHELTER_CLOSED" and taro.checked_out_at == hanako.checked_out_at
    closing = [e for e in stay_events(world) if e["token_kind"] == "SHELTER_CLOSED"]
    assert [(e["action"], e["resident_code"], e["terminal_id"]) for e in closing] == [("CHECK_OUT", "R0002", None)]
    refused(stay(world, "check-in", t1, *TARO), "was not open")
    assert headcounts(world)[SHELTER_A] == 0


def _terminal_queue(world: World, terminal_id: str) -> list[tuple[str, str | None]]:
    with sqlite3.connect(world.data_dir / "shelter-terminals" / f"{terminal_id}.sqlite3") as con:
        return con.execute("SELECT event_id, status FROM events ORDER BY sequence").fetchall()


def test_intake_killed_mid_batch_and_events_delivered_twice(world: World) -> None:
    t1 = terminal(world, "T1", SHELTER_A)
    for entry in (TARO, staff_entry("オナガワ ハナコ", "1980-04-01")):
        assert stay(world, "check-in", t1, *entry, offline=True).returncode == 0
    assert stay(world, "check-out", t1, *TARO, offline=True).returncode == 0

    # Killed inside the intake's transaction, after its second event: nothing of the batch was taken.
    killed = bcl(world, "terminal", "sync", "--terminal", t1, BCL_CRASH_POINT="shelter_intake.mid_batch@2")
    assert killed.returncode == CRASH_EXIT_STATUS, killed
    assert stay_events(world) == [] and headcounts(world)[SHELTER_A] == 0
    assert [status for _, status in _terminal_queue(world, t1)] == [None, None, None]

    # Killed after the intake committed, before the terminal kept the receipts: the batch is sent again.
    killed = bcl(world, "terminal", "sync", "--terminal", t1, BCL_CRASH_POINT="shelter_terminal.after_receipt")
    assert killed.returncode == CRASH_EXIT_STATUS, killed
    assert len(stay_events(world)) == 3 and [s for _, s in _terminal_queue(world, t1)] == [None, None, None]
    again = json.loads(bcl(world, "terminal", "sync", "--terminal", t1, "--json").stdout)
    assert (again["duplicate"], again["APPLIED"], again["waiting"]) == (3, 3, 0)
    events = stay_events(world)
    assert len(events) == 3 and len({e["stay_event_id"] for e in events}) == 3  # nothing applied twice
    assert {e[0] for e in _terminal_queue(world, t1)} == {e["stay_event_id"] for e in events}
    assert headcounts(world)[SHELTER_A] == 1 and where(world, "R0001") == SHELTER_A and where(world, "R0002") is None


def test_sync_sigkilled_between_batches_loses_nothing_and_applies_nothing_twice(world: World) -> None:
    t1 = terminal(world, "T1", SHELTER_A)
    queue = TerminalQueue(world.data_dir / "shelter-terminals" / f"{t1}.sqlite3")
    # In the past (the shelter opened OPENED_BEFORE ago), so that "now", when the occupancy is read, is after them
    # all: 太郎's last check-out counts, however long the test took.
    start = world.opened_at + dt.timedelta(minutes=1)
    total = 1_200  # three batches of the sync (20 minutes of events)
    for n in range(total):  # 太郎 in and out, all day, while the terminal is offline
        queue.record(StayAction.CHECK_OUT if n % 2 else StayAction.CHECK_IN, TokenKind.STAFF,
                     {"kana": "オナガワ タロウ", "birth_date": "1950-07-07", "staff": "佐藤"},
                     start + dt.timedelta(seconds=n))
    queue.close()
    con = sqlite3.connect(world.data_dir / "disaster" / "store.sqlite3")
    sync = subprocess.Popen([str(BCL), "shelter", "terminal", "sync", "--terminal", t1], env=world.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while sync.poll() is None and not con.execute("SELECT count(*) FROM shelter_stay_events").fetchone()[0]:
            pass
        sync.kill()  # SIGKILL, most likely while the second batch is in its transaction
        sync.wait(timeout=30)
        taken = con.execute("SELECT count(*) FROM shelter_stay_events").fetchone()[0]
        assert taken % 500 == 0 or taken == total  # whole batches only
    finally:
        con.close()
    again = json.loads(bcl(world, "terminal", "sync", "--terminal", t1, "--json").stdout)
    assert again["waiting"] == 0
    events = stay_events(world)
    assert len(events) == total and len({e["stay_event_id"] for e in events}) == total
    assert {e["outcome"] for e in events} == {"APPLIED"}
    assert len(world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0002")) == total // 2
    assert where(world, "R0002") is None and headcounts(world)[SHELTER_A] == 0


# -- reopening, the disaster's closing, refusals dead-lettered -----------------------------------------------------


def _record(world: World, terminal_id: str, action: StayAction, token: tuple[TokenKind, dict[str, str]],
            at: dt.datetime) -> str:
    """An event kept on a terminal's queue at a chosen time (the terminal offline): its id."""
    queue = TerminalQueue(world.data_dir / "shelter-terminals" / f"{terminal_id}.sqlite3")
    try:
        return queue.record(action, token[0], token[1], at).event.event_id
    finally:
        queue.close()


def _staff(kana: str, birth: str) -> tuple[TokenKind, dict[str, str]]:
    return TokenKind.STAFF, {"kana": kana, "birth_date": birth, "staff": "佐藤"}


TARO_TOKEN, HANAKO_TOKEN = _staff("オナガワ タロウ", "1950-07-07"), _staff("オナガワ ハナコ", "1980-04-01")


def test_a_shelter_closed_and_opened_again(world: World) -> None:
    t1, at = terminal(world, "T1", SHELTER_A), world.opened_at
    minutes = [at + dt.timedelta(minutes=m) for m in range(0, 181)]
    _record(world, t1, StayAction.CHECK_IN, TARO_TOKEN, minutes[10])
    assert bcl(world, "terminal", "sync", "--terminal", t1).returncode == 0
    closed = bcl(world, "close", world.disaster_id, SHELTER_A, "--staff", "佐藤", "--at", minutes[30].isoformat())
    assert closed.returncode == 0 and "1 checked out" in closed.stdout, closed
    refused(bcl(world, "open", world.disaster_id, SHELTER_A, "--staff", "佐藤", "--at", minutes[20].isoformat()),
            "opens again at or after its closing")
    reopened = bcl(world, "open", world.disaster_id, SHELTER_A, "--staff", "鈴木", "--at", minutes[60].isoformat())
    assert reopened.returncode == 0, reopened
    refused(bcl(world, "open", world.disaster_id, SHELTER_A, "--staff", "鈴木"), "is open for this disaster already")
    # 太郎 comes back after the reopening; 花子 arrives; a check-in made while it was closed is refused.
    _record(world, t1, StayAction.CHECK_IN, TARO_TOKEN, minutes[70])
    _record(world, t1, StayAction.CHECK_IN, HANAKO_TOKEN, minutes[80])
    gap = _record(world, t1, StayAction.CHECK_IN, _staff("スズキ イチロウ", "1960-01-01"), minutes[45])
    synced = json.loads(bcl(world, "terminal", "sync", "--terminal", t1, "--json").stdout)
    assert (synced["APPLIED"], synced["REFUSED"]) == (2, 1)
    [(event_id, _, reason)] = world.platform.shelters.refused(world.disaster_id)
    assert event_id == gap and "was not open" in reason
    taro = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0002")
    assert [(s.checked_in_at, s.checked_out_at, s.ended_by) for s in taro] == [
        (minutes[10], minutes[30], "SHELTER_CLOSED"), (minutes[70], None, None)]
    # The occupancy right across the two periods.
    assert [headcounts(world, minutes[m])[SHELTER_A] for m in (20, 45, 75, 85)] == [1, 0, 1, 2]
    assert headcounts(world)[SHELTER_A] == 2
    periods = world.platform.shelters.openings(world.disaster_id, every_period=True)
    assert [(o.shelter_id, o.period, o.closed_at) for o in periods if o.shelter_id == SHELTER_A] == [
        (SHELTER_A, 1, minutes[30]), (SHELTER_A, 2, None)]
    # Closing the second period checks out its two, and leaves the first period's stay as it was.
    closed = bcl(world, "close", world.disaster_id, SHELTER_A, "--staff", "鈴木", "--at", minutes[120].isoformat())
    assert closed.returncode == 0 and "2 checked out" in closed.stdout, closed
    taro = world.platform.shelters.stays_of(world.disaster_id, ONAGAWA, "R0002")
    assert [(s.checked_out_at, s.ended_by) for s in taro] == [(minutes[30], "SHELTER_CLOSED"),
                                                              (minutes[120], "SHELTER_CLOSED")]
    assert [headcounts(world, minutes[m])[SHELTER_A] for m in (20, 85, 130)] == [1, 2, 0]


def _disaster_close(world: World, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "disaster", "close", world.disaster_id, "--json"], capture_output=True,
                          text=True, env=world.env | extra_env, timeout=120)


def test_closing_the_disaster_closes_its_open_shelters_in_the_same_step(world: World) -> None:
    t1, t2 = terminal(world, "T1", SHELTER_A), terminal(world, "T2", SHELTER_B)
    assert stay(world, "check-in", t1, *TARO).returncode == 0
    assert stay(world, "check-in", t2, *staff_entry("オナガワ ハナコ", "1980-04-01")).returncode == 0
    before = len(world.platform.disaster_store.unpublished(10_000))

    # Killed inside the closing's transaction, one shelter closed: nothing of it was kept.
    killed = _disaster_close(world, BCL_CRASH_POINT="disaster_close.mid_shelters")
    assert killed.returncode == CRASH_EXIT_STATUS, killed
    assert world.platform.disaster_store.disaster(world.disaster_id).closed_at is None
    assert headcounts(world) == {SHELTER_A: 1, SHELTER_B: 1}
    assert len(world.platform.disaster_store.unpublished(10_000)) == before

    done = _disaster_close(world)
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["shelters_closed"] == 2
    closed_at = world.platform.disaster_store.disaster(world.disaster_id).closed_at
    assert closed_at is not None
    assert {o.shelter_id: o.closed_at for o in world.platform.shelters.openings(world.disaster_id)} == {
        SHELTER_A: closed_at, SHELTER_B: closed_at}
    assert headcounts(world) == {SHELTER_A: 0, SHELTER_B: 0}
    assert where(world, "R0002") is None and where(world, "R0001") is None
    closing = [e for e in stay_events(world) if e["token_kind"] == "SHELTER_CLOSED"]
    assert sorted((e["shelter_id"], e["resident_code"]) for e in closing) == [(SHELTER_A, "R0002"),
                                                                               (SHELTER_B, "R0001")]
    # The disaster is closed for good: no shelter opens for it, and a terminal's later check-in is refused.
    refused(bcl(world, "open", world.disaster_id, SHELTER_A, "--staff", "佐藤"), "is closed")
    refused(stay(world, "check-in", t1, *TARO), "was not open")


def test_refused_terminal_events_are_dead_lettered_once_without_personal_data(world: World) -> None:
    t1 = terminal(world, "T1", SHELTER_A)
    # A terminal set up (offline) for a shelter no one imported.
    lost = TerminalQueue.create(world.data_dir / "shelter-terminals" / "T9.sqlite3", world.disaster_id,
                                "E0000000000000", "T9", dt.datetime.now(dt.UTC))
    lost.close()
    now = dt.datetime.now(dt.UTC)
    expected = {
        _record(world, t1, StayAction.CHECK_IN, _staff("ヤマダ ハナコ", "1961-02-03"), now): "UNKNOWN_PERSON",
        _record(world, t1, StayAction.CHECK_IN, _staff("スズキ イチロウ", "1960-01-01"), now): "AMBIGUOUS_PERSON",
        _record(world, t1, StayAction.CHECK_IN, (TokenKind.CARD, {"serial": "00000000000b0001",
                                                                  "certificate": "bm90IGEgY2VydGlmaWNhdGU="}), now):
            "BAD_CERTIFICATE",
        _record(world, t1, StayAction.CHECK_IN, (TokenKind.QR, {"text": "BCL-SHELTER-1.eyJkIjoiMSJ9.AAAA"}), now):
            "BAD_QR",
        _record(world, t1, StayAction.CHECK_IN, TARO_TOKEN, world.opened_at - dt.timedelta(minutes=5)):
            "SHELTER_NOT_OPEN",
        _record(world, "T9", StayAction.CHECK_IN, TARO_TOKEN, now): "UNKNOWN_SHELTER",
    }
    # A check-out without a check-in is no refusal but an UNMATCHED stay event (kept, applied if its check-in
    # arrives): it is on bcl.shelter.stays, not a dead letter.
    unmatched = _record(world, t1, StayAction.CHECK_OUT, TARO_TOKEN, now)
    # The terminal is killed after the intake committed, before it kept the answers: it sends the batch again.
    killed = bcl(world, "terminal", "sync", "--terminal", t1, BCL_CRASH_POINT="shelter_terminal.after_receipt")
    assert killed.returncode == CRASH_EXIT_STATUS, killed
    again = json.loads(bcl(world, "terminal", "sync", "--terminal", t1, "--json").stdout)
    assert (again["REFUSED"], again["UNMATCHED"], again["duplicate"]) == (5, 1, 6)
    assert json.loads(bcl(world, "terminal", "sync", "--terminal", "T9", "--json").stdout)["REFUSED"] == 1
    # Kept with the reason in the store and answered to the terminal.
    assert {i for i, _, _ in world.platform.shelters.refused(world.disaster_id)} == set(expected)
    assert all(status == "REFUSED" for i, status in _terminal_queue(world, t1) if i in expected)

    relayed = subprocess.run([str(BCL), "disaster", "relay", "--until-published"], capture_output=True, text=True,
                             env=world.env, timeout=120)
    assert relayed.returncode == 0, relayed
    dlq = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DLQ])
    messages = [m for m in read_topic(world.env["BCL_BOOTSTRAP_SERVERS"], topics.DLQ)
                if m.key() == world.disaster_id.encode()]
    letters = [dlq.decode(m.value()) for m in messages]
    assert {letter["processor"] for letter in letters} == {"shelter-intake"}
    values = [json.loads(letter["value"]) for letter in letters]
    assert sorted(v["event_id"] for v in values) == sorted(expected)  # each once, the resent batch too
    for letter, value in zip(letters, values, strict=True):
        assert letter["reason_code"] == expected[value["event_id"]]
        assert letter["topic"] == f"shelter-terminal:{value['terminal_id']}" and letter["partition"] == 0
        assert letter["offset"] == value["terminal_sequence"] and value["disaster_id"] == world.disaster_id
    # No name, reading, birth date, certificate or QR of the tokens in the dead letters (nor in their reasons).
    raw = b"".join(m.value() for m in messages)
    tokens = ("ヤマダ", "スズキ", "オナガワ", "1961-02-03", "1960-01-01", "1950-07-07", "bm90IGEgY2VydGlmaWNhdGU",
              "eyJkIjoiMSJ9")
    for personal in tokens:
        assert personal.encode() not in raw, personal
    stays_published = [SERDE.decode(m.value()) for m in read_topic(world.env["BCL_BOOTSTRAP_SERVERS"],
                                                                    topics.SHELTER_STAYS)]
    [out] = [e for e in stays_published if e["stay_event_id"] == unmatched]
    assert out["outcome"] == "UNMATCHED"
