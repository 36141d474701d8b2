"""The 被災者台帳 store (sinks.disaster_ledger) over a real encrypted snapshot store and the real disaster store file:
the build at declaration equals the point-in-time restore at 発災日時 (what changed later is not in it), the §6.1
register updates through `apply_register_states` with records decoded by the real Avro serde, a replay changing
nothing, staff items never overwritten, closed disasters left alone."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.disaster_ledger import LedgerFlag, ReviewReason
from domain.disasters import Disaster, declaration
from domain.dwellings import address_text, dwelling_id
from domain.japan_time import JST, japan_date
from infra import topics
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.disaster_ledger import COLUMNS, DisasterLedger, LedgerBuild, Unbuilt, put_residents
from sinks.disaster_store import PAGE_SIZE, DisasterStore
from sinks.restore import read_restore, restore
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.sinks.history_factory import append_events

TANABE = "302066"
ONAGAWA = "045811"
START = dt.datetime(2026, 11, 1, tzinfo=JST)


@pytest.fixture(scope="module")
def register() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """田辺市 with 8,000 residents, and 60 days of changes (moves, deaths, births, household changes, …)."""
    sim = RegisterSimulator(load_reference_data(), TANABE, population=8000, seed=11, start=START,
                            font_path=load_settings().mincho_font)
    return list(sim.full_load()), list(sim.changes(60))


@pytest.fixture
def platform(tmp_path: Path, register: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> Iterator[Platform]:
    load, changes = register
    p = Platform(load_settings({"data_dir": tmp_path / "data"}))
    append_events(p.snapshot_store, TANABE, load, 1000)
    append_events(p.snapshot_store, TANABE, changes, 40)
    yield p
    p.disaster_store.close()


def occurred(changes: list[dict[str, Any]]) -> dt.datetime:
    """A third into the changes: two thirds of them happened after the disaster."""
    return changes[len(changes) // 3]["event_time"] + dt.timedelta(milliseconds=1)


def declare(ledger: DisasterLedger, at: dt.datetime, *codes: str) -> tuple[Disaster, list[LedgerBuild | Unbuilt]]:
    now = dt.datetime.now(dt.UTC)
    return ledger.declare(declaration(name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=codes,
                                      occurred_at=at, now=now), now)


def decoded(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as the disaster-ledger processor gets them from bcl.residents (encoded, decoded: real Avro)."""
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.RESIDENTS])
    return [serde.decode(serde.encode(r)) for r in records]


def after_disaster(changes: list[dict[str, Any]], at: dt.datetime) -> list[dict[str, Any]]:
    return [e for e in changes if e["event_time"] > at and e["after"] is not None]


def test_build_equals_the_restore_at_the_moment_of_the_disaster(platform: Platform, tmp_path: Path,
                                                                register: Any) -> None:
    _, changes = register
    at = occurred(changes)
    disaster, [onagawa, tanabe] = declare(platform.disaster_ledger, at, TANABE, ONAGAWA)
    restored = tmp_path / "r.parquet"
    count = restore(platform.snapshot_store, TANABE, at, restored, current_only=True)
    expected = {r["resident_code"]: r for r in read_restore(restored, platform.snapshot_store, TANABE).to_pylist()}
    assert isinstance(tanabe, LedgerBuild) and tanabe.residents == count == len(expected) and tanabe.as_of == at
    rows = platform.disaster_ledger.residents(disaster.disaster_id, TANABE)
    assert {r["resident_code"] for r in rows} == set(expected)
    for row in rows:
        want = expected[row["resident_code"]]
        assert row["in_base"] == 1 and row["flags"] == "" and row["current_status"] == "CURRENT"
        assert (row["family_name_kana"], row["birth_date"], row["individual_number"], row["household_number"],
                row["address"], row["dwelling_id"], row["jpki_serials"]) == (
            want["family_name_kana"], want["birth_date"].isoformat(), want["individual_number"],
            want["household_number"], address_text(want["address"]), dwelling_id(TANABE, want["address"]),
            ",".join(c["serial"] for c in want["jpki_certificates"]))
    # What changed after the disaster is not in the base: the register now differs from it.
    now_out = tmp_path / "now.parquet"
    restore(platform.snapshot_store, TANABE, changes[-1]["event_time"], now_out, current_only=True)
    now = {r["resident_code"]: r for r in read_restore(now_out, platform.snapshot_store, TANABE).to_pylist()}
    assert set(now) != set(expected)
    moved = [e["resident_code"] for e in after_disaster(changes, at) if e["change_type"] == "MOVE_WITHIN"]
    assert moved and all(expected[c]["address"] != now[c]["address"] for c in moved if c in now and c in expected)
    # Dwellings: one per full address at 発災日時, with the town's coordinates.
    con = platform.disaster_store.connection
    dwellings = con.execute("SELECT dwelling_id, address, latitude, longitude FROM ledger_dwellings "
                            "WHERE disaster_id=?", (disaster.disaster_id,)).fetchall()
    assert len(dwellings) == tanabe.dwellings == len({dwelling_id(TANABE, r["address"]) for r in expected.values()})
    # 女川町 streams nothing here: no ledger, never part of one (pattern B).
    assert isinstance(onagawa, Unbuilt) and "no backup of municipality 045811" in onagawa.reason
    assert platform.disaster_ledger.builds(disaster.disaster_id).keys() == {TANABE}
    assert con.execute("SELECT count(*) FROM ledger_residents WHERE municipality_code=?", (ONAGAWA,)).fetchone() == (0,)


def test_a_build_in_batches_is_the_build_in_one(platform: Platform, register: Any) -> None:
    """Batches of 700 of the 8,000 residents (ordered by resident code, so a household's address recurs in
    several batches): the same rows and dwellings as the build in one batch."""
    at = occurred(register[1])
    whole, [one] = declare(platform.disaster_ledger, at, TANABE)
    batched = DisasterLedger(platform.disaster_store, platform.snapshot_store, build_batch_rows=700)
    parts, [many] = declare(batched, at, TANABE)
    assert isinstance(one, LedgerBuild) and many == one and one.residents > 7 * 700
    assert (batched.residents(parts.disaster_id, TANABE)
            == platform.disaster_ledger.residents(whole.disaster_id, TANABE))
    assert [(d.dwelling_id, d.address, d.latitude, d.longitude) for d in batched.dwellings(parts.disaster_id, TANABE)] \
        == [(d.dwelling_id, d.address, d.latitude, d.longitude)
            for d in platform.disaster_ledger.dwellings(whole.disaster_id, TANABE)]


def test_a_store_made_with_small_pages_keeps_them_and_builds_the_same(platform: Platform, tmp_path: Path,
                                                                     register: Any) -> None:
    """A disaster store made before the pages grew to 16 KiB keeps its 4 KiB pages and builds the same ledger."""
    assert platform.disaster_store.connection.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
    old_file = tmp_path / "old" / "store.sqlite3"
    old_file.parent.mkdir(mode=0o700)
    made = sqlite3.connect(old_file)
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.close()
    old = DisasterStore(old_file, AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_EVENTS]))
    try:
        assert old.connection.execute("PRAGMA page_size").fetchone() == (4096,)
        at = occurred(register[1])
        in_old, [built] = declare(DisasterLedger(old, platform.snapshot_store), at, TANABE)
        in_new, [expected] = declare(platform.disaster_ledger, at, TANABE)
        assert built == expected
        assert (DisasterLedger(old, platform.snapshot_store).residents(in_old.disaster_id, TANABE)
                == platform.disaster_ledger.residents(in_new.disaster_id, TANABE))
    finally:
        old.close()


def test_build_before_the_backup_starts_is_refused_whole(platform: Platform) -> None:
    disaster, [build] = declare(platform.disaster_ledger, START - dt.timedelta(days=1), TANABE)
    assert isinstance(build, Unbuilt) and "holds nothing of 302066 as early as" in build.reason
    assert platform.disaster_ledger.builds(disaster.disaster_id) == {}


def flags_of(ledger: DisasterLedger, disaster: Disaster) -> dict[str, tuple[str, str, str | None]]:
    return {r["resident_code"]: (r["flags"], r["review_reasons"], r["moved_to"])
            for r in ledger.residents(disaster.disaster_id, TANABE)}


def test_register_updates_follow_the_rules_and_a_replay_changes_nothing(platform: Platform, register: Any) -> None:
    _, changes = register
    at = occurred(changes)
    ledger = platform.disaster_ledger
    disaster, _ = declare(ledger, at, TANABE)
    base = {r["resident_code"]: r for r in ledger.residents(disaster.disaster_id, TANABE)}
    later = after_disaster(changes, at)
    states = decoded([e["after"] for e in later])
    changed = ledger.apply_register_states(states)
    assert changed > 0
    rows = flags_of(ledger, disaster)
    by_type: dict[str, set[str]] = {}
    for e in later:
        by_type.setdefault(e["change_type"], set()).add(e["resident_code"])
    last = {s["resident_code"]: s for s in states}
    for code in by_type["MOVE_IN"] | by_type.get("BIRTH", set()):
        if last[code]["status"] == "CURRENT":
            assert code not in base and "ARRIVED_AFTER" in rows[code][0]
    deaths = [c for c in by_type["DEATH"] if c in base]
    for code in deaths:  # notified after the disaster, but the death may have been before it
        inside = last[code]["deleted_on"] >= japan_date(at)
        assert rows[code][0] == ("DIED,CONDOLENCE_REVIEW" if inside else "DIED")
    assert any("CONDOLENCE_REVIEW" in rows[c][0] for c in deaths)
    for code in by_type["MOVE_OUT"]:
        if code in base:
            assert "MOVED_OUT" in rows[code][0]
    splits = [c for c in by_type["HOUSEHOLD_CHANGE"] if c in base and last[c]["status"] == "CURRENT"
              and last[c]["household_number"] != base[c]["household_number"]]
    assert splits and all(ReviewReason.HOUSEHOLD_SPLIT in rows[c][1] for c in splits)
    untouched = set(base) - {e["resident_code"] for e in later}
    assert all(rows[c] == ("", "", None) for c in untouched)
    # A redelivery, a replay of everything in one batch, and the refresh from the backup: nothing changes.
    assert ledger.apply_register_states(states[-10:]) == 0
    assert ledger.apply_register_states(states) == 0
    assert ledger.refresh(disaster.disaster_id, changes[-1]["event_time"]) == {TANABE: 0}
    assert flags_of(ledger, disaster) == rows


def test_refresh_is_the_same_rule_as_the_updates(platform: Platform, register: Any) -> None:
    _, changes = register
    at = occurred(changes)
    ledger = platform.disaster_ledger
    first, _ = declare(ledger, at, TANABE)
    second, _ = declare(ledger, at, TANABE)
    # The register updates reach every open disaster of the municipality: both ledgers.
    ledger.apply_register_states(decoded([e["after"] for e in after_disaster(changes, at)]))
    assert ledger.refresh(second.disaster_id, changes[-1]["event_time"]) == {TANABE: 0}
    assert flags_of(ledger, first) == flags_of(ledger, second)


def test_staff_items_are_never_overwritten_and_closed_disasters_left_alone(platform: Platform, register: Any) -> None:
    _, changes = register
    at = occurred(changes)
    ledger = platform.disaster_ledger
    disaster, _ = declare(ledger, at, TANABE)
    closed, _ = declare(ledger, at, TANABE)
    platform.disaster_store.close_disaster(closed.disaster_id, None, dt.datetime.now(dt.UTC))
    later = after_disaster(changes, at)
    dead = next(e for e in later if e["change_type"] == "DEATH")["resident_code"]
    now = dt.datetime.now(dt.UTC)
    ledger.set_staff_item(disaster.disaster_id, TANABE, dead, "CONTACT", "090-0000-0000 (長男)", "staff-1", now)
    ledger.set_staff_item(disaster.disaster_id, TANABE, dead, "REQUIRES_CARE", "要介護3", "staff-1", now)
    before_closed = flags_of(ledger, closed)
    assert ledger.apply_register_states(decoded([e["after"] for e in later])) > 0
    assert "DIED" in flags_of(ledger, disaster)[dead][0]
    assert ledger.staff_items(disaster.disaster_id, TANABE, dead) == {"CONTACT": "090-0000-0000 (長男)",
                                                                    "REQUIRES_CARE": "要介護3"}
    assert flags_of(ledger, closed) == before_closed


def test_move_away_from_a_damaged_dwelling_is_flagged(platform: Platform, register: Any) -> None:
    _, changes = register
    at = occurred(changes)
    movers = [e for e in after_disaster(changes, at) if e["change_type"] == "MOVE_WITHIN"]
    ledger = platform.disaster_ledger
    disaster, _ = declare(ledger, at, TANABE)
    homes = {r["resident_code"]: r["dwelling_id"] for r in ledger.residents(disaster.disaster_id, TANABE)}
    mover = next(e["resident_code"] for e in movers if e["resident_code"] in homes)
    damaged = DisasterLedger(platform.disaster_store, platform.snapshot_store,
                             damaged_dwellings=lambda con, d: {homes[mover]})
    damaged.apply_register_states(decoded([e["after"] for e in movers]))
    rows = flags_of(ledger, disaster)
    assert LedgerFlag.REVIEW in rows[mover][0] and ReviewReason.MOVED_FROM_DAMAGED in rows[mover][1]
    # The household moved with them from the damaged dwelling; those from other dwellings are not flagged.
    movers_home = {e["resident_code"] for e in movers if homes.get(e["resident_code"]) == homes[mover]}
    assert all(ReviewReason.MOVED_FROM_DAMAGED in rows[c][1] for c in movers_home)
    others = {e["resident_code"] for e in movers if e["resident_code"] in homes} - movers_home
    assert others and all(ReviewReason.MOVED_FROM_DAMAGED not in rows[c][1] for c in others)


def test_damaged_dwellings_come_from_the_surveys(platform: Platform) -> None:
    from sinks.disaster_ledger import surveyed_damage

    con: sqlite3.Connection = platform.disaster_store.connection
    assert surveyed_damage(con, "d") == frozenset()  # before damage assessment exists
    con.execute("CREATE TABLE dwelling_surveys (disaster_id TEXT, dwelling_id TEXT, level TEXT)")
    con.executemany("INSERT INTO dwelling_surveys VALUES ('d', ?, ?)",
                    [("a", "ZENKAI"), ("b", "HANKAI"), ("c", "JUN_HANKAI"), ("e", "ICHIBU_SONKAI")])
    assert surveyed_damage(con, "d") == {"a", "b"}


def test_identity_text_of_any_kind_is_kept_exactly(platform: Platform, tmp_path: Path, register: Any) -> None:
    """The identity columns are stored as one JSON array (made by DuckDB in a build, by Python for a row put): a
    name with quotes, a backslash, a tab or characters outside the BMP reads back exactly, by both paths."""
    at = occurred(register[1])
    disaster, _ = declare(platform.disaster_ledger, at, TANABE)
    exported = tmp_path / "register.csv"
    restore(platform.snapshot_store, TANABE, at, exported, "csv", current_only=True)
    with exported.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    awkward = 'ﾃｽﾄ "引用" \\ 𠮷野\t家'
    target = next(r for r in rows if r["status"] == "CURRENT")
    target["family_name"] = awkward
    with exported.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ledger = platform.disaster_ledger
    ledger.import_csv(disaster.disaster_id, TANABE, exported, dt.datetime.now(dt.UTC))
    [row] = [r for r in ledger.residents(disaster.disaster_id, TANABE) if r["resident_code"] == target["resident_code"]]
    assert row["family_name"] == awkward
    con = platform.disaster_store.connection
    put = dict(row) | {"resident_code": "X0000000001", "given_name": awkward, "jpki_serials": '"a",\\b'}
    with platform.disaster_store.transaction():
        put_residents(con, [(disaster.disaster_id, TANABE, *(put[c] for c in COLUMNS[2:]))])
    [back] = [r for r in ledger.residents(disaster.disaster_id, TANABE) if r["resident_code"] == "X0000000001"]
    assert back == put


# The first layout of the ledger (until the compact one): what stores made then hold.
FIRST_LAYOUT = """
    CREATE TABLE ledger_residents (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        in_base INTEGER NOT NULL,
        family_name TEXT NOT NULL, given_name TEXT NOT NULL, family_name_kana TEXT NOT NULL,
        given_name_kana TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL, individual_number TEXT NOT NULL,
        jpki_serials TEXT NOT NULL, household_head_name TEXT NOT NULL, relationship TEXT NOT NULL,
        address TEXT, dwelling_id TEXT, household_number TEXT,
        current_status TEXT NOT NULL, deletion_reason TEXT, deleted_on TEXT, current_address TEXT NOT NULL,
        current_dwelling_id TEXT NOT NULL, current_household_number TEXT NOT NULL, flags TEXT NOT NULL,
        review_reasons TEXT NOT NULL, moved_to TEXT,
        PRIMARY KEY (disaster_id, municipality_code, resident_code)) WITHOUT ROWID;
    CREATE INDEX ledger_residents_dwelling ON ledger_residents (disaster_id, dwelling_id);
    CREATE TABLE ledger_dwellings (
        disaster_id TEXT NOT NULL, dwelling_id TEXT NOT NULL, municipality_code TEXT NOT NULL,
        address TEXT NOT NULL, latitude REAL NOT NULL, longitude REAL NOT NULL,
        PRIMARY KEY (disaster_id, dwelling_id)) WITHOUT ROWID;
    CREATE TABLE ledger_builds (
        disaster_id TEXT NOT NULL REFERENCES disasters, municipality_code TEXT NOT NULL, source TEXT NOT NULL,
        as_of INTEGER NOT NULL, residents INTEGER NOT NULL, dwellings INTEGER NOT NULL, built_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code));
"""


def test_a_store_of_the_first_layout_is_carried_over(platform: Platform, tmp_path: Path, register: Any) -> None:
    """A store whose ledger rows are in the first layout's tables (the views' columns) is carried over when
    opened: the same rows, changed by the register after the disaster and arrivals included, the same dwellings,
    staff items and builds kept; the old tables are gone and the store builds and updates as any other."""
    _, changes = register
    at = occurred(changes)
    ledger = platform.disaster_ledger
    disaster, _ = declare(ledger, at, TANABE)
    ledger.apply_register_states(decoded([e["after"] for e in after_disaster(changes, at)]))
    want = ledger.residents(disaster.disaster_id, TANABE)
    assert {r["in_base"] for r in want} == {0, 1} and any(r["flags"] for r in want)
    dwellings = ledger.dwellings(disaster.disaster_id, TANABE)
    old_file = tmp_path / "old" / "store.sqlite3"
    old_file.parent.mkdir(mode=0o700)
    old = DisasterStore(old_file, AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_EVENTS]))
    try:
        now = dt.datetime.now(dt.UTC)
        in_old = old.declare(declaration(name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=[TANABE],
                                         occurred_at=at, now=now), now)
        con = old.connection
        with old.transaction():
            for statement in FIRST_LAYOUT.split(";"):
                if statement.strip():
                    con.execute(statement)
            build = ledger.builds(disaster.disaster_id)[TANABE]
            con.execute("INSERT INTO ledger_builds VALUES (?, ?, ?, ?, ?, ?, 0)",
                        (in_old.disaster_id, TANABE, build.source, int(build.as_of.timestamp() * 1000),
                         build.residents, build.dwellings))
            con.executemany(f"INSERT INTO ledger_residents VALUES ({', '.join('?' * len(COLUMNS))})",
                            [(in_old.disaster_id, TANABE, *r.values()) for r in want])
            con.executemany("INSERT INTO ledger_dwellings VALUES (?, ?, ?, ?, ?, ?)",
                            [(in_old.disaster_id, d.dwelling_id, TANABE, d.address, d.latitude, d.longitude)
                             for d in dwellings])
        carried = DisasterLedger(old, platform.snapshot_store)
        assert carried.residents(in_old.disaster_id, TANABE) == want
        assert carried.dwellings(in_old.disaster_id, TANABE) == dwellings
        kinds = dict(con.execute("SELECT name, type FROM sqlite_master WHERE name LIKE 'ledger_%'").fetchall())
        assert kinds["ledger_residents"] == kinds["ledger_dwellings"] == "view"
        assert not [n for n in kinds if n.endswith("_first")]
        assert carried.apply_register_states(decoded([e["after"] for e in after_disaster(changes, at)])) == 0
    finally:
        old.close()
