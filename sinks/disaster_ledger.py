"""The 被災者台帳 of each declared disaster and municipality (docs/domain.md §6.1), in the disaster store's file.

Built once per municipality, in one transaction, from the register as it stood at 発災日時: from the backup (the
point-in-time read of sinks.restore, current records only) when it holds the municipality that early, otherwise
(pattern B: the municipality does not stream, or the backup starts later) from a CSV of its register imported by
staff. A municipality without a build has no ledger at all, never part of one.

Tables (the register part; what staff enter lives in `ledger_staff_items`, which register updates never write):
  ledger_builds     one row per built ledger: where it came from, as of when, how many residents;
  ledger_residents  one row per person: the record at 発災日時 (for an arrival after it, the latest record's
                    identity and no base address), then the register-derived state (domain.disaster_ledger);
  ledger_dwellings  one row per dwelling at 発災日時 (domain.dwellings), with the town's coordinates.

`apply_register_states` keeps the ledgers of open disasters current from the materialised register: the
register-derived columns of a row are a pure function of its base, the latest record, the disaster window and
the damaged dwellings, so a redelivered or replayed record changes nothing."""

from __future__ import annotations

import datetime as dt
import gc
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from domain.damage_levels import DamageLevel
from domain.disaster_ledger import (
    DisasterWindow,
    LedgerFlag,
    LedgerState,
    RegisterFacts,
    disaster_window,
    is_damaged,
    ledger_state,
    register_facts,
)
from domain.disasters import Declaration, Disaster
from domain.dwellings import ADDRESS_PARTS, address_text, dwelling_id
from domain.errors import BclError
from domain.japan_time import format_instant
from domain.register_csv import missing_columns, register_record
from sinks.csv_import import read_csv_records
from sinks.disaster_store import DisasterStore
from sinks.restore import RestoreError, register_as_of
from sinks.snapshot_store import BaseSnapshotStore


class LedgerError(BclError):
    pass


class NoLedgerError(LedgerError):
    """The municipality's ledger of the disaster is not built (yet)."""


class CsvImportError(LedgerError):
    pass


_TABLES = """
    CREATE TABLE IF NOT EXISTS ledger_builds (
        disaster_id TEXT NOT NULL REFERENCES disasters, municipality_code TEXT NOT NULL, source TEXT NOT NULL,
        as_of INTEGER NOT NULL, residents INTEGER NOT NULL, dwellings INTEGER NOT NULL, built_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code));
    CREATE TABLE IF NOT EXISTS ledger_residents (
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
    CREATE INDEX IF NOT EXISTS ledger_residents_dwelling ON ledger_residents (disaster_id, dwelling_id);
    CREATE TABLE IF NOT EXISTS ledger_dwellings (
        disaster_id TEXT NOT NULL, dwelling_id TEXT NOT NULL, municipality_code TEXT NOT NULL,
        address TEXT NOT NULL, latitude REAL NOT NULL, longitude REAL NOT NULL,
        PRIMARY KEY (disaster_id, dwelling_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS ledger_staff_items (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, item TEXT NOT NULL,
        value TEXT NOT NULL, entered_by TEXT NOT NULL, entered_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, resident_code, item)) WITHOUT ROWID;
"""

# The identity columns of a row: the record at 発災日時, or for an arrival after it the latest record.
IDENTITY = ("family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex",
            "individual_number", "jpki_serials", "household_head_name", "relationship")
BASE = ("address", "dwelling_id", "household_number")
DERIVED = ("current_status", "deletion_reason", "deleted_on", "current_address", "current_dwelling_id",
           "current_household_number", "flags", "review_reasons", "moved_to")
COLUMNS = ("disaster_id", "municipality_code", "resident_code", "in_base", *IDENTITY, *BASE, *DERIVED)
_ROW = f"INTO ledger_residents ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

# A built row: the record at 発災日時 (the key, the identity, the address text, dwelling id and household number),
# and its derived part, the rule's answer for a record unchanged since then (domain.disaster_ledger: itself, no
# flag), written by SQLite from the same parameters and constants rather than asked and bound a million times.
_BUILT_VALUES = {"disaster_id": "?1", "municipality_code": "?2", "resident_code": "?3", "in_base": "1",
                 **{column: f"?{4 + i}" for i, column in enumerate(IDENTITY)},
                 "address": "?14", "dwelling_id": "?15", "household_number": "?16",
                 "current_status": "'CURRENT'", "deletion_reason": "NULL", "deleted_on": "NULL",
                 "current_address": "?14", "current_dwelling_id": "?15", "current_household_number": "?16",
                 "flags": "''", "review_reasons": "''", "moved_to": "NULL"}
_BUILD_ROW = f"INSERT {_ROW.split(' VALUES ')[0]} VALUES ({', '.join(_BUILT_VALUES[c] for c in COLUMNS)})"

BUILD_CACHE_KIB = 256 * 1024
BUILD_BATCH_ROWS = 50_000  # rows read, made and inserted at a time
BUILD_BATCHES_AHEAD = 2  # batches made and waiting while one is inserted

# What a build reads of each record at 発災日時, in this order: the resident code, the identity columns, the household
# number, the address parts and the coordinates. From the backup, projected in DuckDB (dates and enums as text, the
# serials joined), ordered by resident code so that SQLite appends to its primary key instead of splitting pages.
_BASE_SELECT = f"""SELECT resident_code, family_name, given_name, family_name_kana, given_name_kana,
    CAST(birth_date AS VARCHAR), CAST(sex AS VARCHAR), individual_number,
    array_to_string(list_transform(jpki_certificates, lambda c: c.serial), ','), household_head_name, relationship,
    household_number, {", ".join(f"address.{part}" for part in ADDRESS_PARTS)}, address.latitude, address.longitude
    FROM ({{query}}) ORDER BY resident_code"""


@dataclass(frozen=True)
class LedgerBuild:
    """A built ledger: from the backup or a CSV, as of when, how big."""

    municipality_code: str
    source: str  # "backup" or "csv"
    as_of: dt.datetime
    residents: int
    dwellings: int


@dataclass(frozen=True)
class LedgerDwelling:
    """A dwelling of a ledger at 発災日時, with its town's coordinates."""

    dwelling_id: str
    municipality_code: str
    address: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Unbuilt:
    """A municipality whose ledger could not be built from the backup, and why (pattern B: import its CSV)."""

    municipality_code: str
    reason: str


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _derived(state: LedgerState) -> tuple[Any, ...]:
    return (state.status, state.deletion_reason, None if state.deleted_on is None else state.deleted_on.isoformat(),
            state.address, state.dwelling_id, state.household_number, ",".join(state.flags),
            ",".join(state.review_reasons), state.moved_to)


def _identity(resident: Mapping[str, Any]) -> tuple[Any, ...]:
    serials = ",".join(c["serial"] for c in resident.get("jpki_certificates") or [])
    return (resident["family_name"], resident["given_name"], resident["family_name_kana"],
            resident["given_name_kana"], resident["birth_date"].isoformat(), resident["sex"],
            resident["individual_number"], serials, resident["household_head_name"], resident["relationship"])


def surveyed_damage(con: sqlite3.Connection, disaster_id: str) -> frozenset[str]:
    """The dwellings of the disaster surveyed 半壊 or worse (domain.disaster_ledger.is_damaged), from the survey
    table of damage assessment (`dwelling_surveys`: disaster_id, dwelling_id, level) once it exists."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='dwelling_surveys'").fetchone() is None:
        return frozenset()
    rows = con.execute("SELECT dwelling_id, level FROM dwelling_surveys WHERE disaster_id=?", (disaster_id,))
    return frozenset(d for d, level in rows if is_damaged(DamageLevel(level)))


class DisasterLedger:
    """The ledgers, over the disaster store's connection; the backup is read for builds and refreshes."""

    def __init__(self, store: DisasterStore, snapshots: BaseSnapshotStore,
                 damaged_dwellings: Callable[[sqlite3.Connection, str], Set[str]] = surveyed_damage,
                 build_batch_rows: int = BUILD_BATCH_ROWS) -> None:
        self.store = store
        self._build_batch_rows = build_batch_rows
        self._snapshots = snapshots
        self._con = store.connection
        self._damaged_dwellings = damaged_dwellings
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- building ------------------------------------------------------------------------------

    def declare(self, declaration: Declaration, now: dt.datetime) -> tuple[Disaster, list[LedgerBuild | Unbuilt]]:
        """Store the declaration, then build each municipality's ledger from the backup as of 発災日時 (one
        transaction each). A municipality the backup does not hold that early gets no ledger (Unbuilt, with the
        reason): its register is imported with `import_csv`."""
        disaster = self.store.declare(declaration, now)
        return disaster, [self.build(disaster, code, now) for code in disaster.municipality_codes]

    def build(self, disaster: Disaster, municipality_code: str, now: dt.datetime) -> LedgerBuild | Unbuilt:
        """The municipality's ledger from the backup as the register stood at 発災日時, replacing the register part
        of an earlier build (staff items are kept)."""
        with ExitStack() as stack:
            try:
                register = stack.enter_context(register_as_of(self._snapshots, municipality_code,
                                                              disaster.occurred_at, current_only=True))
            except RestoreError as exc:
                return Unbuilt(municipality_code, str(exc))
            # Streamed in batches: the rows of one are stored while the next is read and made (_store_base).
            batches = register.con.sql(_BASE_SELECT.format(query=register.query),
                                       params=register.params).fetch_record_batch(self._build_batch_rows)
            columns = ([column.to_pylist() for column in batch.columns] for batch in batches)
            return self._store_base(disaster, municipality_code, "backup", columns, now)
        raise AssertionError("unreachable")  # ExitStack does not swallow exceptions

    def import_csv(self, disaster_id: str, municipality_code: str, path: Path, now: dt.datetime) -> LedgerBuild:
        """Pattern B: the municipality's register as CSV (domain.register_csv), taken as it stood at 発災日時. Every
        row is checked before anything is written; the first bad one is refused naming its line and column. The
        current records become the ledger in one transaction, replacing the register part of an earlier build
        (staff items are kept)."""
        disaster = self.store.disaster(disaster_id)
        if municipality_code not in disaster.municipality_codes:
            raise CsvImportError(f"{municipality_code} is not a municipality of disaster {disaster_id} "
                                 f"({', '.join(disaster.municipality_codes)})")
        records = sorted((r for r in _read_csv(path, municipality_code) if r["status"] == "CURRENT"),
                         key=lambda r: r["resident_code"])
        columns = [list(column) for column in zip(*map(_base_fields, records), strict=True)]
        return self._store_base(disaster, municipality_code, "csv", [columns] if records else [], now)

    def _store_base(self, disaster: Disaster, municipality_code: str, source: str,
                    batches: Iterable[Sequence[Sequence[Any]]], now: dt.datetime) -> LedgerBuild:
        """Replace the register part of the ledger with the records of `batches` (each a batch's columns, in the
        order of _BASE_SELECT), in one transaction. A million rows: the rows of a batch are made in a thread while
        the previous batch is inserted (SQLite releases the GIL while it steps), zipped from the columns without
        per-row dictionaries, and each address is turned into its text and dwelling id once (a household shares
        it)."""
        key = (disaster.disaster_id, municipality_code)
        addresses: dict[tuple[Any, ...], tuple[str, str]] = {}
        dwellings: list[tuple[Any, ...]] = []

        def rows_of(columns: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
            places = []
            located = zip(zip(*columns[12:17], strict=True), columns[17], columns[18], strict=True)
            for parts, latitude, longitude in located:
                known = addresses.get(parts)
                if known is None:
                    address = dict(zip(ADDRESS_PARTS, parts, strict=True))
                    known = addresses[parts] = (address_text(address), dwelling_id(municipality_code, address))
                    dwellings.append((key[0], known[1], municipality_code, known[0], latitude, longitude))
                places.append(known)
            texts, ids = zip(*places, strict=True) if places else ((), ())
            return list(zip(repeat(key[0], len(ids)), repeat(municipality_code, len(ids)), *columns[:11], texts, ids,
                            columns[11], strict=True))

        residents = 0
        # A large build touches every page of its B-trees: a page cache of BUILD_CACHE_KIB instead of SQLite's 2 MiB
        # default keeps them in memory until the commit (a quarter less time for a million rows), for the build only.
        (cache,) = self._con.execute("PRAGMA cache_size").fetchone()
        self._con.execute(f"PRAGMA cache_size=-{BUILD_CACHE_KIB}")
        try:
            with _without_collection(), self.store.transaction():
                for table in ("ledger_residents", "ledger_dwellings"):
                    self._con.execute(f"DELETE FROM {table} WHERE disaster_id=? AND municipality_code=?", key)
                for rows in _made_ahead(map(rows_of, batches)):
                    self._con.executemany(_BUILD_ROW, rows)
                    residents += len(rows)
                dwellings.sort(key=itemgetter(1))  # appended to the primary key, not inserted all over it
                self._con.executemany("INSERT INTO ledger_dwellings VALUES (?, ?, ?, ?, ?, ?)", dwellings)
                self._con.execute("INSERT OR REPLACE INTO ledger_builds VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (*key, source, _ms(disaster.occurred_at), residents, len(dwellings), _ms(now)))
        finally:
            self._con.execute(f"PRAGMA cache_size={int(cache)}")
        return LedgerBuild(municipality_code, source, disaster.occurred_at, residents, len(dwellings))

    def builds(self, disaster_id: str) -> dict[str, LedgerBuild]:
        rows = self._con.execute("SELECT municipality_code, source, as_of, residents, dwellings FROM ledger_builds "
                                 "WHERE disaster_id=?", (disaster_id,))
        return {m: LedgerBuild(m, s, _instant(a), r, d) for m, s, a, r, d in rows}

    # -- register updates ----------------------------------------------------------------------

    def apply_register_states(self, states: Sequence[Mapping[str, Any]]) -> int:
        """Apply materialised register records (Resident, as AvroSerde decodes them from bcl.residents) to the
        ledgers of every open disaster of their municipality, in one transaction; returns how many ledger rows
        changed. Within one call the last record of a person wins; applying a record again changes nothing."""
        latest = {(s["municipality_code"], s["resident_code"]): s for s in states}
        by_municipality: dict[str, list[Mapping[str, Any]]] = {}
        for (code, _), state in latest.items():
            by_municipality.setdefault(code, []).append(state)
        changed = 0
        with self.store.transaction():
            for code, records in by_municipality.items():
                for disaster in self._open_disasters_with_ledger(code):
                    changed += self._apply(disaster, code, records)
        return changed

    def refresh(self, disaster_id: str, now: dt.datetime) -> dict[str, int | Unbuilt]:
        """Recompute the register-derived part of the disaster's ledgers from the backup as it is now (the same
        rule as the register updates), building first any ledger not built yet. Per municipality: the rows
        changed, or why its ledger cannot be built."""
        disaster = self.store.disaster(disaster_id)
        built = self.builds(disaster_id)
        result: dict[str, int | Unbuilt] = {}
        for code in disaster.municipality_codes:
            if code not in built:
                made = self.build(disaster, code, now)
                if isinstance(made, Unbuilt):
                    result[code] = made
                    continue
            try:
                with register_as_of(self._snapshots, code, now) as register:
                    records = register.con.sql(register.query, params=register.params).to_arrow_table()
            except RestoreError as exc:  # a CSV-built ledger of a municipality that does not stream
                csv_built = code in built and built[code].source == "csv"
                result[code] = 0 if csv_built else Unbuilt(code, str(exc))
                continue
            with self.store.transaction():
                result[code] = self._apply(disaster, code, records.to_pylist())
        return result

    def _open_disasters_with_ledger(self, municipality_code: str) -> list[Disaster]:
        ids = self._con.execute(
            "SELECT b.disaster_id FROM ledger_builds b JOIN disasters d USING (disaster_id) "
            "WHERE b.municipality_code=? AND d.closed_at IS NULL ORDER BY d.declared_at", (municipality_code,))
        return [self.store.disaster(i) for (i,) in ids.fetchall()]

    def _apply(self, disaster: Disaster, code: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Inside the caller's transaction: each record's row made what the rule says; the rows changed."""
        window = disaster_window(disaster.occurred_at, disaster.closed_at)
        damaged = self._damaged_dwellings(self._con, disaster.disaster_id)
        rows = self._rows(disaster.disaster_id, code, [r["resident_code"] for r in records])
        changed = 0
        for record in records:
            row = rows.get(record["resident_code"])
            changed += self._apply_one(disaster.disaster_id, code, record, row, window, damaged)
        return changed

    def _rows(self, disaster_id: str, code: str, resident_codes: list[str]) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        select = (f"SELECT resident_code, in_base, {', '.join(IDENTITY)}, {', '.join(BASE)}, {', '.join(DERIVED)} "
                  "FROM ledger_residents WHERE disaster_id=? AND municipality_code=? AND resident_code IN ")
        for i in range(0, len(resident_codes), 500):  # SQLite's limit of parameters
            chunk = resident_codes[i:i + 500]
            for rc, *rest in self._con.execute(select + f"({', '.join('?' * len(chunk))})",
                                               (disaster_id, code, *chunk)):
                found[rc] = tuple(rest)
        return found

    def _apply_one(self, disaster_id: str, code: str, record: Mapping[str, Any], row: tuple[Any, ...] | None,
                   window: DisasterWindow, damaged: Set[str]) -> int:
        in_base = row is not None and row[0] == 1
        base = None
        if in_base:
            assert row is not None
            address, dwelling, household = row[1 + len(IDENTITY):1 + len(IDENTITY) + len(BASE)]
            base = RegisterFacts("CURRENT", None, None, address, dwelling, household)
        latest: RegisterFacts = register_facts(record)
        state = ledger_state(base, latest, window, damaged)
        key = (disaster_id, code, record["resident_code"])
        if state is None:  # an arrival after the disaster that left again
            if row is None:
                return 0
            self._con.execute("DELETE FROM ledger_residents WHERE disaster_id=? AND municipality_code=? "
                              "AND resident_code=?", key)
            return 1
        derived = _derived(state)
        if in_base:
            assert row is not None
            if tuple(row[1 + len(IDENTITY) + len(BASE):]) == derived:
                return 0
            self._con.execute(f"UPDATE ledger_residents SET {', '.join(f'{c}=?' for c in DERIVED)} "
                              "WHERE disaster_id=? AND municipality_code=? AND resident_code=?", (*derived, *key))
            return 1
        new = (*key, 0, *_identity(record), None, None, None, *derived)
        if row is not None and tuple(row) == new[3:]:
            return 0
        self._con.execute(f"INSERT OR REPLACE {_ROW}", new)
        return 1

    # -- reading -------------------------------------------------------------------------------

    def ledger_build(self, disaster_id: str, municipality_code: str) -> LedgerBuild:
        disaster = self.store.disaster(disaster_id)
        if municipality_code not in disaster.municipality_codes:
            raise NoLedgerError(f"{municipality_code} is not a municipality of disaster {disaster_id} "
                                f"({', '.join(disaster.municipality_codes)})")
        build = self.builds(disaster_id).get(municipality_code)
        if build is None:
            raise NoLedgerError(
                f"no ledger of {municipality_code} for disaster {disaster_id}: the backup does not hold its register "
                f"as of {format_instant(disaster.occurred_at)}; import it with `bcl disaster import-csv "
                f"{disaster_id} --municipality {municipality_code} FILE` (or `bcl disaster refresh` once it does)")
        return build

    def flag_counts(self, disaster_id: str, municipality_code: str) -> dict[str, int]:
        """How many rows of the ledger carry each flag ("residents": all rows)."""
        self.ledger_build(disaster_id, municipality_code)
        key = (disaster_id, municipality_code)
        (total,) = self._con.execute("SELECT count(*) FROM ledger_residents WHERE disaster_id=? AND "
                                     "municipality_code=?", key).fetchone()
        counts = {"residents": total}
        for flag in LedgerFlag:
            (n,) = self._con.execute("SELECT count(*) FROM ledger_residents WHERE disaster_id=? AND "
                                     "municipality_code=? AND ','||flags||',' LIKE ?", (*key, f"%,{flag},%")).fetchone()
            counts[flag.value] = n
        return counts

    def residents(self, disaster_id: str, municipality_code: str,
                  flag: LedgerFlag | None = None) -> list[dict[str, Any]]:
        """The ledger's rows (personal data: the caller audits the read), by household and resident code."""
        self.ledger_build(disaster_id, municipality_code)
        where = "" if flag is None else " AND ','||flags||',' LIKE ?"
        params: tuple[Any, ...] = (disaster_id, municipality_code) + (() if flag is None else (f"%,{flag},%",))
        cursor = self._con.execute(
            f"SELECT {', '.join(COLUMNS[2:])} FROM ledger_residents WHERE disaster_id=? AND municipality_code=?"
            f"{where} ORDER BY household_number IS NULL, household_number, current_household_number, resident_code",
            params)
        return [dict(zip(COLUMNS[2:], row, strict=True)) for row in cursor]

    def dwellings(self, disaster_id: str, municipality_code: str) -> list[LedgerDwelling]:
        """The dwellings of the municipality's ledger, by id (addresses: personal data, the caller audits)."""
        self.ledger_build(disaster_id, municipality_code)
        rows = self._con.execute("SELECT dwelling_id, address, latitude, longitude FROM ledger_dwellings "
                                 "WHERE disaster_id=? AND municipality_code=? ORDER BY dwelling_id",
                                 (disaster_id, municipality_code))
        return [LedgerDwelling(d, municipality_code, a, lat, lon) for d, a, lat, lon in rows]

    # -- staff items ---------------------------------------------------------------------------

    def set_staff_item(self, disaster_id: str, municipality_code: str, resident_code: str, item: str, value: str,
                       entered_by: str, now: dt.datetime) -> None:
        """A staff-entered item of a person (連絡先, 要配慮者, …): its own table, never written by register updates."""
        self.set_staff_items(disaster_id, municipality_code, resident_code, {item: value}, entered_by, now)

    def set_staff_items(self, disaster_id: str, municipality_code: str, resident_code: str,
                        items: Mapping[str, str | None], entered_by: str, now: dt.datetime) -> None:
        """Several items of a person in one transaction (a form saved all or nothing); None removes an item."""
        key = (disaster_id, municipality_code, resident_code)
        with self.store.transaction():
            for item, value in items.items():
                if value is None:
                    self._con.execute("DELETE FROM ledger_staff_items WHERE disaster_id=? AND municipality_code=? "
                                      "AND resident_code=? AND item=?", (*key, item))
                else:
                    self._con.execute("INSERT OR REPLACE INTO ledger_staff_items VALUES (?, ?, ?, ?, ?, ?, ?)",
                                      (*key, item, value, entered_by, _ms(now)))

    def staff_items(self, disaster_id: str, municipality_code: str, resident_code: str) -> dict[str, str]:
        rows = self._con.execute("SELECT item, value FROM ledger_staff_items WHERE disaster_id=? AND "
                                 "municipality_code=? AND resident_code=?", (disaster_id, municipality_code,
                                                                             resident_code))
        return dict(rows.fetchall())


_T = TypeVar("_T")


@contextmanager
def _without_collection() -> Iterator[None]:
    """Python's cyclic garbage collector paused: a build makes millions of tuples of strings, which hold no
    cycles, and each full collection would walk all those alive (a fifth of a build's time at a million)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _made_ahead(items: Iterator[_T], ahead: int = BUILD_BATCHES_AHEAD) -> Iterator[_T]:
    """`items`, made in a thread up to `ahead` items before they are taken: the making (reading the backup, Python
    values) runs while the taker works without the GIL (SQLite stepping). An exception of the making is raised
    here; when the taker stops early (an error, a rollback), the thread stops at its next item and is joined
    before this returns, so that nothing it reads (the backup's DuckDB connection) is used after."""
    made: queue.Queue[tuple[bool, Any]] = queue.Queue(ahead)
    stop = threading.Event()
    end = object()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                made.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, end))
        except BaseException as exc:  # handed to the taker, which raises it
            put((False, exc))

    thread = threading.Thread(target=make, name="ledger-build", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = made.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _base_fields(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """A record's fields in the order of _BASE_SELECT."""
    address = record["address"]
    return (record["resident_code"], *_identity(record), record["household_number"],
            *(address[part] for part in ADDRESS_PARTS), address["latitude"], address["longitude"])


def _read_csv(path: Path, municipality_code: str) -> list[dict[str, Any]]:
    """Every record of the file, or CsvImportError naming the line and column of the first bad row."""
    return read_csv_records(path, CsvImportError, missing_columns=missing_columns,
                            columns="the columns of `bcl backup restore --format csv`",
                            record=lambda row: register_record(row, municipality_code), key_column="resident_code",
                            key=lambda record: str(record["resident_code"]))
