"""The 被災者台帳 of each declared disaster and municipality (docs/domain.md §6.1), in the disaster store's file.

Built once per municipality, in one transaction, from the register as it stood at 発災日時: from the backup (the
point-in-time read of sinks.restore, current records only) when it holds the municipality that early, otherwise
(pattern B: the municipality does not stream, or the backup starts later) from a CSV of its register imported by
staff. A municipality without a build has no ledger at all, never part of one.

What readers see (views; what staff enter lives in `ledger_staff_items`, which register updates never write):
  ledger_builds     one row per built ledger: where it came from, as of when, how many residents (a table);
  ledger_residents  one row per person: the record at 発災日時 (for an arrival after it, the latest record's
                    identity and no base address), then the register-derived state (domain.disaster_ledger);
  ledger_dwellings  one row per dwelling at 発災日時 (domain.dwellings), with the town's coordinates.

How they are stored: a million people are written at every declaration, so each row is kept small. A ledger is
an integer (`ledger_keys`), a dwelling an integer (`ledger_homes`, which holds its id, address text and
coordinates once), and a person's row (`ledger_people`) names its base dwelling by that integer and leaves the
register-derived columns NULL while they are what the base says (current, at the base's address and household,
no flag): the views put the texts back. Both views end with that integer, `dwelling`: residents are found by
dwelling on it (ledger_dwellings' `dwelling` = ledger_residents' `dwelling`, an index), not on the dwelling id
text, which the people do not hold. Stores of the first layout (the views' columns as tables) are carried
over when opened.

`apply_register_states` keeps the ledgers of open disasters current from the materialised register: the
register-derived columns of a row are a pure function of its base, the latest record, the disaster window and
the damaged dwellings, so a redelivered or replayed record changes nothing."""

from __future__ import annotations

import datetime as dt
import gc
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

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


# The identity columns of a row: the record at 発災日時, or for an arrival after it the latest record.
IDENTITY = ("family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex",
            "individual_number", "jpki_serials", "household_head_name", "relationship")
BASE = ("address", "dwelling_id", "household_number")
DERIVED = ("current_status", "deletion_reason", "deleted_on", "current_address", "current_dwelling_id",
           "current_household_number", "flags", "review_reasons", "moved_to")
# The columns of the view ledger_residents, in its order.
COLUMNS = ("disaster_id", "municipality_code", "resident_code", "in_base", *IDENTITY, *BASE, *DERIVED)

# What a stored NULL of a register-derived column stands for: the base's (domain.disaster_ledger: a record
# unchanged since 発災日時 is itself, without a flag).
_DERIVED_VIEW = {"current_status": "coalesce(p.current_status, 'CURRENT')", "deletion_reason": "p.deletion_reason",
                 "deleted_on": "p.deleted_on", "current_address": "coalesce(p.current_address, h.address)",
                 "current_dwelling_id": "coalesce(p.current_dwelling_id, h.dwelling_id)",
                 "current_household_number": "coalesce(p.current_household_number, p.household_number)",
                 "flags": "coalesce(p.flags, '')", "review_reasons": "coalesce(p.review_reasons, '')",
                 "moved_to": "p.moved_to"}

_TABLES = f"""
    CREATE TABLE IF NOT EXISTS ledger_builds (
        disaster_id TEXT NOT NULL REFERENCES disasters, municipality_code TEXT NOT NULL, source TEXT NOT NULL,
        as_of INTEGER NOT NULL, residents INTEGER NOT NULL, dwellings INTEGER NOT NULL, built_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code));
    CREATE TABLE IF NOT EXISTS ledger_keys (
        ledger INTEGER PRIMARY KEY, disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL,
        UNIQUE (disaster_id, municipality_code));
    CREATE TABLE IF NOT EXISTS ledger_homes (
        dwelling INTEGER PRIMARY KEY, ledger INTEGER NOT NULL, dwelling_id TEXT NOT NULL, address TEXT NOT NULL,
        latitude REAL NOT NULL, longitude REAL NOT NULL, UNIQUE (ledger, dwelling_id));
    CREATE TABLE IF NOT EXISTS ledger_people (
        ledger INTEGER NOT NULL, resident_code TEXT NOT NULL, in_base INTEGER NOT NULL, identity TEXT NOT NULL,
        dwelling INTEGER, household_number TEXT,
        current_status TEXT, deletion_reason TEXT, deleted_on TEXT, current_address TEXT, current_dwelling_id TEXT,
        current_household_number TEXT, flags TEXT, review_reasons TEXT, moved_to TEXT,
        PRIMARY KEY (ledger, resident_code)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ledger_people_dwelling ON ledger_people (dwelling);
    CREATE VIEW IF NOT EXISTS ledger_residents AS SELECT k.disaster_id, k.municipality_code, p.resident_code,
        p.in_base, {", ".join(f"p.identity ->> {i} AS {c}" for i, c in enumerate(IDENTITY))},
        h.address, h.dwelling_id, p.household_number,
        {", ".join(f"{v} AS {c}" for c, v in _DERIVED_VIEW.items())}, p.dwelling
        FROM ledger_people p JOIN ledger_keys k ON k.ledger = p.ledger
        LEFT JOIN ledger_homes h ON h.dwelling = p.dwelling;
    CREATE VIEW IF NOT EXISTS ledger_dwellings AS SELECT k.disaster_id, h.dwelling_id, k.municipality_code, h.address,
        h.latitude, h.longitude, h.dwelling FROM ledger_homes h JOIN ledger_keys k ON k.ledger = h.ledger;
    CREATE TABLE IF NOT EXISTS ledger_staff_items (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, item TEXT NOT NULL,
        value TEXT NOT NULL, entered_by TEXT NOT NULL, entered_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, resident_code, item)) WITHOUT ROWID;
"""

# The first layout kept the views' columns as tables: carried over into the keys, homes and people (the
# register-derived columns as they were), in the transaction that opens the store.
_FROM_FIRST_LAYOUT = f"""
    ALTER TABLE ledger_residents RENAME TO ledger_residents_first;
    ALTER TABLE ledger_dwellings RENAME TO ledger_dwellings_first;
    {_TABLES}
    INSERT INTO ledger_keys (disaster_id, municipality_code)
        SELECT disaster_id, municipality_code FROM ledger_dwellings_first
        UNION SELECT disaster_id, municipality_code FROM ledger_residents_first ORDER BY 1, 2;
    INSERT INTO ledger_homes (ledger, dwelling_id, address, latitude, longitude)
        SELECT k.ledger, d.dwelling_id, d.address, d.latitude, d.longitude
        FROM ledger_dwellings_first d JOIN ledger_keys k USING (disaster_id, municipality_code)
        ORDER BY k.ledger, d.dwelling_id;
    INSERT INTO ledger_people (ledger, resident_code, in_base, identity, dwelling, household_number,
        {", ".join(DERIVED)})
        SELECT k.ledger, r.resident_code, r.in_base, json_array({", ".join(f"r.{c}" for c in IDENTITY)}), h.dwelling,
        r.household_number, {", ".join(f"r.{c}" for c in DERIVED)}
        FROM ledger_residents_first r JOIN ledger_keys k USING (disaster_id, municipality_code)
        LEFT JOIN ledger_homes h ON h.ledger = k.ledger AND h.dwelling_id = r.dwelling_id
        ORDER BY k.ledger, r.resident_code;
    DROP TABLE ledger_residents_first;
    DROP TABLE ledger_dwellings_first;
"""

# A person of a build: the record at 発災日時 with its base dwelling's number, the register-derived columns NULL.
_BUILT_PERSON = ("INSERT INTO ledger_people (ledger, resident_code, in_base, identity, dwelling, household_number) "
                 "VALUES ({ledger}, ?, 1, ?, ?, ?)")
_PUT_PERSON = (f"INSERT OR REPLACE INTO ledger_people (ledger, resident_code, in_base, identity, dwelling, "
               f"household_number, {', '.join(DERIVED)}) VALUES ({', '.join('?' * (6 + len(DERIVED)))})")

BUILD_CACHE_KIB = 256 * 1024
BUILD_BATCH_ROWS = 50_000  # rows read, made and inserted at a time

# What a build reads of each record at 発災日時, named so: the resident code, the identity columns, the household
# number, the address parts and the coordinates. From the backup, projected in DuckDB (dates and enums as text, the
# serials joined); from a CSV, made in Python (_base_fields) in the same order.
_BASE_COLUMNS = ("resident_code", *IDENTITY, "household_number", *ADDRESS_PARTS, "latitude", "longitude")
_BASE_SCHEMA = pa.schema([(c, pa.float64() if c in ("latitude", "longitude") else pa.string()) for c in _BASE_COLUMNS])
_BACKUP_BASE = f"""SELECT resident_code, family_name, given_name, family_name_kana, given_name_kana,
    CAST(birth_date AS VARCHAR) AS birth_date, CAST(sex AS VARCHAR) AS sex, individual_number,
    array_to_string(list_transform(jpki_certificates, lambda c: c.serial), ',') AS jpki_serials, household_head_name,
    relationship, household_number, {", ".join(f"address.{part} AS {part}" for part in ADDRESS_PARTS)},
    address.latitude AS latitude, address.longitude AS longitude FROM ({{query}})"""
# The distinct addresses of the base, in the order of their first resident (so that the dwellings' numbers grow
# with the resident codes the people are inserted in), each with its first resident's coordinates.
_ADDRESSES = f"""SELECT {", ".join(ADDRESS_PARTS)}, arg_min(latitude, resident_code) AS latitude,
    arg_min(longitude, resident_code) AS longitude FROM ledger_base GROUP BY ALL ORDER BY min(resident_code)"""
# The people of the base, each with the identity columns as one JSON array (one value to hand over and bind instead
# of ten: a third less time for a million) and their dwelling's number (ledger_numbers: an address's parts and its
# number), ordered by resident code so that SQLite appends to its primary key instead of splitting pages.
_PEOPLE = f"""SELECT b.resident_code, to_json([{", ".join(f"b.{c}" for c in IDENTITY)}])::VARCHAR, n.dwelling,
    b.household_number
    FROM ledger_base b JOIN ledger_numbers n
    ON {" AND ".join(f"b.{p} IS NOT DISTINCT FROM n.{p}" for p in ADDRESS_PARTS)}
    ORDER BY b.resident_code"""


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


def _ledger_key(con: sqlite3.Connection, disaster_id: str, municipality_code: str) -> int:
    """The integer the ledger's rows name it by, given at its first write (inside the caller's transaction)."""
    con.execute("INSERT OR IGNORE INTO ledger_keys (disaster_id, municipality_code) VALUES (?, ?)",
                (disaster_id, municipality_code))
    (ledger,) = con.execute("SELECT ledger FROM ledger_keys WHERE disaster_id=? AND municipality_code=?",
                            (disaster_id, municipality_code)).fetchone()
    return int(ledger)


def _homes(addresses: pa.Table, ledger: int, municipality_code: str,
           first: int) -> tuple[list[tuple[Any, ...]], pa.Table]:
    """The dwellings of a build's distinct addresses (_ADDRESSES: the parts, then the coordinates), numbered from
    `first`, as rows of ledger_homes; and each address's parts with its dwelling's number. Addresses whose parts
    differ only as domain.dwellings does not tell apart (blanks) are one dwelling, the first one's."""
    numbers: dict[str, int] = {}
    homes: list[tuple[Any, ...]] = []
    of_address: list[int] = []
    for *parts, latitude, longitude in zip(*(c.to_pylist() for c in addresses.columns), strict=True):
        address = dict(zip(ADDRESS_PARTS, parts, strict=True))
        dwelling = dwelling_id(municipality_code, address)
        number = numbers.get(dwelling)
        if number is None:
            number = numbers[dwelling] = first + len(homes)
            homes.append((number, ledger, dwelling, address_text(address), latitude, longitude))
        of_address.append(number)
    return homes, addresses.select(ADDRESS_PARTS).append_column("dwelling", pa.array(of_address, pa.int64()))


def put_dwellings(con: sqlite3.Connection, dwellings: Iterable[Sequence[Any]]) -> None:
    """Write dwellings given as rows of the view ledger_dwellings (disaster_id, dwelling_id, municipality_code,
    address, latitude, longitude), inside the caller's transaction."""
    con.executemany("INSERT INTO ledger_homes (ledger, dwelling_id, address, latitude, longitude) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(_ledger_key(con, d, m), dwelling, address, latitude, longitude)
                     for d, dwelling, m, address, latitude, longitude in dwellings])


def put_residents(con: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """Write people given as rows of the view ledger_residents (COLUMNS), each replacing the person's row, inside
    the caller's transaction. A row with a base dwelling names one of the ledger's (put_dwellings, or a build):
    its base address is that dwelling's."""
    values = []
    for row in rows:
        named = dict(zip(COLUMNS, row, strict=True))
        ledger = _ledger_key(con, named["disaster_id"], named["municipality_code"])
        dwelling = None
        if named["dwelling_id"] is not None:
            found = con.execute("SELECT dwelling FROM ledger_homes WHERE ledger=? AND dwelling_id=?",
                                (ledger, named["dwelling_id"])).fetchone()
            if found is None:
                raise LedgerError(f"dwelling {named['dwelling_id']} is not in the ledger of "
                                  f"{named['municipality_code']} for disaster {named['disaster_id']}")
            (dwelling,) = found
        identity = json.dumps([named[c] for c in IDENTITY], ensure_ascii=False)
        values.append((ledger, named["resident_code"], named["in_base"], identity, dwelling, named["household_number"],
                       *(named[c] for c in DERIVED)))
    con.executemany(_PUT_PERSON, values)


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
            first_layout = self._con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                             "name='ledger_residents'").fetchone() is not None
            for statement in (_FROM_FIRST_LAYOUT if first_layout else _TABLES).split(";"):
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
            register.con.execute(f"CREATE TEMP TABLE ledger_base AS {_BACKUP_BASE.format(query=register.query)}",
                                 register.params)
            return self._store_base(disaster, municipality_code, "backup", register.con, now)
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
        records = [_base_fields(r) for r in _read_csv(path, municipality_code) if r["status"] == "CURRENT"]
        columns = list(zip(*records, strict=True)) if records else [()] * len(_BASE_COLUMNS)
        with duckdb.connect() as con:
            con.register("ledger_csv", pa.Table.from_pydict(dict(zip(_BASE_COLUMNS, columns, strict=True)),
                                                            schema=_BASE_SCHEMA))
            con.execute("CREATE TEMP TABLE ledger_base AS SELECT * FROM ledger_csv")
            return self._store_base(disaster, municipality_code, "csv", con, now)

    def _store_base(self, disaster: Disaster, municipality_code: str, source: str, base: duckdb.DuckDBPyConnection,
                    now: dt.datetime) -> LedgerBuild:
        """Replace the register part of the ledger with the records of `base`'s table ledger_base (_BASE_COLUMNS),
        in one transaction. A million rows: DuckDB finds the distinct addresses, whose dwelling ids and texts are
        made here once each (a household shares its address) and numbered; it then joins each person to their
        dwelling's number, in batches. (Making a batch's tuples in a thread while SQLite inserts the previous one
        is slower: the thread holds the GIL that SQLite gives up at every row it steps.)"""
        residents = 0
        # A large build touches every page of its B-trees: a page cache of BUILD_CACHE_KIB instead of SQLite's 2 MiB
        # default keeps them in memory until the commit (a quarter less time for a million rows), for the build only.
        (cache,) = self._con.execute("PRAGMA cache_size").fetchone()
        self._con.execute(f"PRAGMA cache_size=-{BUILD_CACHE_KIB}")
        try:
            with _without_collection(), self.store.transaction():
                ledger = _ledger_key(self._con, disaster.disaster_id, municipality_code)
                for table in ("ledger_people", "ledger_homes"):
                    self._con.execute(f"DELETE FROM {table} WHERE ledger=?", (ledger,))
                (first,) = self._con.execute("SELECT coalesce(max(dwelling), 0) + 1 FROM ledger_homes").fetchone()
                homes, numbers = _homes(base.sql(_ADDRESSES).to_arrow_table(), ledger, municipality_code, first)
                self._con.executemany("INSERT INTO ledger_homes VALUES (?, ?, ?, ?, ?, ?)", homes)
                base.register("ledger_numbers", numbers)
                people = base.sql(_PEOPLE).to_arrow_reader(self._build_batch_rows)
                insert = _BUILT_PERSON.format(ledger=int(ledger))
                for batch in people:
                    rows = list(zip(*(c.to_pylist() for c in batch.columns), strict=True))
                    self._con.executemany(insert, rows)
                    residents += len(rows)
                self._con.execute("INSERT OR REPLACE INTO ledger_builds VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (disaster.disaster_id, municipality_code, source, _ms(disaster.occurred_at),
                                   residents, len(homes), _ms(now)))
        finally:
            self._con.execute(f"PRAGMA cache_size={int(cache)}")
        return LedgerBuild(municipality_code, source, disaster.occurred_at, residents, len(homes))

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
        ledger = _ledger_key(self._con, disaster.disaster_id, code)
        changed = 0
        for record in records:
            row = rows.get(record["resident_code"])
            changed += self._apply_one(ledger, (disaster.disaster_id, code), record, row, window, damaged)
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

    def _apply_one(self, ledger: int, disaster_and_code: tuple[str, str], record: Mapping[str, Any],
                   row: tuple[Any, ...] | None, window: DisasterWindow, damaged: Set[str]) -> int:
        in_base = row is not None and row[0] == 1
        base = None
        if in_base:
            assert row is not None
            address, dwelling, household = row[1 + len(IDENTITY):1 + len(IDENTITY) + len(BASE)]
            base = RegisterFacts("CURRENT", None, None, address, dwelling, household)
        latest: RegisterFacts = register_facts(record)
        state = ledger_state(base, latest, window, damaged)
        key = (ledger, record["resident_code"])
        if state is None:  # an arrival after the disaster that left again
            if row is None:
                return 0
            self._con.execute("DELETE FROM ledger_people WHERE ledger=? AND resident_code=?", key)
            return 1
        derived = _derived(state)
        if in_base:
            assert row is not None
            if tuple(row[1 + len(IDENTITY) + len(BASE):]) == derived:
                return 0
            self._con.execute(f"UPDATE ledger_people SET {', '.join(f'{c}=?' for c in DERIVED)} "
                              "WHERE ledger=? AND resident_code=?", (*derived, *key))
            return 1
        new = (*disaster_and_code, record["resident_code"], 0, *_identity(record), None, None, None, *derived)
        if row is not None and tuple(row) == new[3:]:
            return 0
        put_residents(self._con, [new])
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


def _base_fields(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """A record's fields in the order of _BASE_COLUMNS."""
    address = record["address"]
    return (record["resident_code"], *_identity(record), record["household_number"],
            *(address[part] for part in ADDRESS_PARTS), address["latitude"], address["longitude"])


def _read_csv(path: Path, municipality_code: str) -> list[dict[str, Any]]:
    """Every record of the file, or CsvImportError naming the line and column of the first bad row."""
    return read_csv_records(path, CsvImportError, missing_columns=missing_columns,
                            columns="the columns of `bcl backup restore --format csv`",
                            record=lambda row: register_record(row, municipality_code), key_column="resident_code",
                            key=lambda record: str(record["resident_code"]))
