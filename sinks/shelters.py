"""Shelters and the stays at them (docs/domain.md §6.6), on the disaster store's database (sinks.disaster_store).

- `shelters`: the open data (imported all or nothing, re-imports update it) and the capacities by day and by
  night staff entered (an import never touches them).
- `shelter_openings`: a shelter's opening periods for a declared disaster (period 1, 2, ...: a shelter closed can
  be opened again; the stays of each period are kept).
- `shelter_stay_events`: every check-in and check-out taken, keyed by the event id the terminal made (so a copy
  is taken once), with the person it was matched to and what it did (domain.shelter_stays.Outcome);
  `shelter_refused_events`: those refused, with the reason (the terminal was told; nothing is silently dropped),
  each also dead-lettered once (`dead_letter_of`: an outbox row for bcl.dlq in the refusal's transaction).
- `shelter_stays`: each person's stays, a pure function of their events (domain.shelter_stays.stays), rewritten
  for the people a batch touches: the live headcount and "who is where" are queries on it.

`receive` takes a terminal's batch in one transaction: the events, the recomputed stays and one outbox row per
new event (ShelterStay on bcl.shelter.stays, published by the disaster relay). A batch is acknowledged to the
terminal once committed; a crash before loses nothing the terminal was told, a crash after makes the terminal
send it again, which the event ids make harmless. Closing a shelter is one transaction too, with a check-out
event for everyone it checks out; so is closing a disaster (`close_disaster`): the disaster's CLOSED event and the
closing of every shelter still open for it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.disasters import Disaster, DisasterClosedError, UnknownDisasterError, to_millisecond
from domain.register_csv import RowError
from domain.shelter_pass import read_pass
from domain.shelter_stays import (
    REFUSED_TOKEN,
    Ending,
    OpeningPeriod,
    Outcome,
    PersonStays,
    Receipt,
    ReceiptStatus,
    RefusalCode,
    Stay,
    StayAction,
    StayError,
    StayEvent,
    TerminalEvent,
    TokenKind,
    kana_key,
    shelter_open_at,
    stays,
)
from domain.shelters import (
    COLUMNS,
    Capacity,
    Occupancy,
    Shelter,
    ShelterError,
    ShelterKind,
    UnknownShelterError,
    capacity_for,
    period_of,
    shelter_record,
)
from infra import topics
from infra.crash_points import crash_point
from schemas.wire import AvroSerde
from sinks.csv_import import read_csv_records
from sinks.disaster_store import DisasterStore

_TABLES = """
    CREATE TABLE IF NOT EXISTS shelters (
        shelter_id TEXT PRIMARY KEY, municipality_code TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
        latitude REAL NOT NULL, longitude REAL NOT NULL, kind TEXT NOT NULL, hazards TEXT NOT NULL,
        published_capacity INTEGER, capacity_day INTEGER, capacity_night INTEGER, capacity_by TEXT,
        capacity_at INTEGER, imported_at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS shelters_of ON shelters (municipality_code);
    CREATE TABLE IF NOT EXISTS shelter_openings (
        disaster_id TEXT NOT NULL, shelter_id TEXT NOT NULL, period INTEGER NOT NULL, opened_at INTEGER NOT NULL,
        opened_by TEXT NOT NULL, closed_at INTEGER, closed_by TEXT, PRIMARY KEY (disaster_id, shelter_id, period))
        WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS shelter_stay_events (
        event_id TEXT PRIMARY KEY, disaster_id TEXT NOT NULL, shelter_id TEXT NOT NULL, action TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, terminal_id TEXT NOT NULL, terminal_sequence INTEGER NOT NULL,
        token_kind TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        outcome TEXT NOT NULL, received_at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS shelter_stay_events_person
        ON shelter_stay_events (disaster_id, municipality_code, resident_code);
    CREATE TABLE IF NOT EXISTS shelter_refused_events (
        event_id TEXT PRIMARY KEY, disaster_id TEXT NOT NULL, shelter_id TEXT NOT NULL, action TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, terminal_id TEXT NOT NULL, terminal_sequence INTEGER NOT NULL,
        token_kind TEXT NOT NULL, reason TEXT NOT NULL, received_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS shelter_stays (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        shelter_id TEXT NOT NULL, checked_in_at INTEGER NOT NULL, checked_out_at INTEGER, ended_by TEXT);
    CREATE INDEX IF NOT EXISTS shelter_stays_person ON shelter_stays (disaster_id, municipality_code, resident_code);
    CREATE INDEX IF NOT EXISTS shelter_stays_shelter ON shelter_stays (disaster_id, shelter_id, checked_out_at);
"""

_SHELTER_COLUMNS = ("shelter_id", "municipality_code", "name", "address", "latitude", "longitude", "kind", "hazards",
                    "published_capacity", "capacity_day", "capacity_night")
CLOSING_TERMINAL = "shelter-closing"  # the terminal id of the check-outs a closing makes (no terminal made them)
CLOSED_WITH_DISASTER = "(the disaster's closing)"  # closed_by of the shelters a disaster's closing closed
DEAD_LETTER_PROCESSOR = "shelter-intake"
# Stores of the first layout had one opening per disaster and shelter, without a period: it becomes period 1.
_OPENINGS_BEFORE_PERIODS = """
    ALTER TABLE shelter_openings RENAME TO shelter_openings_before_periods;
    CREATE TABLE shelter_openings (
        disaster_id TEXT NOT NULL, shelter_id TEXT NOT NULL, period INTEGER NOT NULL, opened_at INTEGER NOT NULL,
        opened_by TEXT NOT NULL, closed_at INTEGER, closed_by TEXT, PRIMARY KEY (disaster_id, shelter_id, period))
        WITHOUT ROWID;
    INSERT INTO shelter_openings SELECT disaster_id, shelter_id, 1, opened_at, opened_by, closed_at, closed_by
        FROM shelter_openings_before_periods;
    DROP TABLE shelter_openings_before_periods;
"""


class ShelterImportError(ShelterError):
    """A shelter file that cannot be imported (nothing was)."""


@dataclass(frozen=True)
class ShelterEntry:
    """A shelter as staff see it: the open data and the capacity they entered."""

    shelter: Shelter
    capacity: Capacity | None


@dataclass(frozen=True)
class Opening:
    """One opening period of a shelter for a disaster (1 for the first; a reopening is the next)."""

    disaster_id: str
    shelter_id: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    period: int = 1


@dataclass(frozen=True)
class ShelterOccupancy:
    entry: ShelterEntry
    opening: Opening
    occupancy: Occupancy


@dataclass(frozen=True)
class Evacuee:
    """A person checked in somewhere: who (from the ledger), where and since when."""

    municipality_code: str
    resident_code: str
    family_name: str | None
    given_name: str | None
    shelter_id: str
    since: dt.datetime


@dataclass(frozen=True)
class _Person:
    municipality_code: str
    resident_code: str


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _maybe_instant(ms: int | None) -> dt.datetime | None:
    return None if ms is None else _instant(ms)


def _entry(row: Sequence[Any]) -> ShelterEntry:
    shelter_id, code, name, address, lat, lon, kind, hazards, published, day, night = row
    shelter = Shelter(shelter_id, code, name, address, lat, lon, ShelterKind(kind),
                      frozenset(filter(None, hazards.split(","))), published)
    return ShelterEntry(shelter, None if day is None else Capacity(day, night))


def read_shelter_csv(path: Path, municipality_code: str | None) -> list[Shelter]:
    """Every shelter of the file, or ShelterImportError naming the line and column of the first bad row."""
    def record(row: dict[str, str]) -> Shelter:
        shelter = shelter_record(row)
        if municipality_code is not None and shelter.municipality_code != municipality_code:
            raise RowError("municipality_code", f"{shelter.municipality_code} is not {municipality_code}, the "
                                                "municipality importing")
        return shelter

    return read_csv_records(path, ShelterImportError,
                            missing_columns=lambda header: [c for c in COLUMNS if c not in header],
                            columns="the columns of the open data: municipality_code,shelter_id,name,address,lat,lon,"
                                    "kind,hazard_*,capacity",
                            record=record, key_column="shelter_id", key=lambda shelter: shelter.shelter_id)


class Shelters:
    """The shelters, their openings and the stays, over the disaster store's connection and outbox."""

    def __init__(self, store: DisasterStore, serde: AvroSerde, pass_key: bytes, dead_letter_serde: AvroSerde,
                 topic: str = topics.SHELTER_STAYS, dead_letter_topic: str = topics.DLQ) -> None:
        self.store = store
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self._serde = serde
        self._dead_letter_serde = dead_letter_serde
        self._pass_key = pass_key
        self._con = store.connection
        with store.transaction():
            columns = [row[1] for row in self._con.execute("PRAGMA table_info(shelter_openings)")]
            if columns and "period" not in columns:
                for statement in _OPENINGS_BEFORE_PERIODS.split(";"):
                    if statement.strip():
                        self._con.execute(statement)
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- the open data and capacities ------------------------------------------------------------

    def import_csv(self, path: Path, municipality_code: str | None, now: dt.datetime) -> int:
        """Import a file of the open-data format (all rows checked first; all or nothing); a shelter already
        imported is updated, its capacities kept. With a municipality, every row must be of it. How many rows."""
        shelters = read_shelter_csv(path, municipality_code)
        with self.store.transaction():
            self._con.executemany(
                "INSERT INTO shelters (shelter_id, municipality_code, name, address, latitude, longitude, kind, "
                "hazards, published_capacity, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (shelter_id) DO UPDATE SET municipality_code=excluded.municipality_code, "
                "name=excluded.name, address=excluded.address, latitude=excluded.latitude, "
                "longitude=excluded.longitude, kind=excluded.kind, hazards=excluded.hazards, "
                "published_capacity=excluded.published_capacity, imported_at=excluded.imported_at",
                [(s.shelter_id, s.municipality_code, s.name, s.address, s.latitude, s.longitude, s.kind.value,
                  ",".join(sorted(s.hazards)), s.published_capacity, _ms(now)) for s in shelters])
        return len(shelters)

    def set_capacity(self, shelter_id: str, capacity: Capacity, staff: str, now: dt.datetime) -> ShelterEntry:
        if not staff.strip():
            raise ShelterError("name the staff member who enters the capacity (--staff)")
        with self.store.transaction():
            self.shelter(shelter_id)
            self._con.execute("UPDATE shelters SET capacity_day=?, capacity_night=?, capacity_by=?, capacity_at=? "
                              "WHERE shelter_id=?", (capacity.day, capacity.night, staff.strip(), _ms(now), shelter_id))
            return self.shelter(shelter_id)

    def shelter(self, shelter_id: str) -> ShelterEntry:
        row = self._con.execute(f"SELECT {', '.join(_SHELTER_COLUMNS)} FROM shelters WHERE shelter_id=?",
                                (shelter_id,)).fetchone()
        if row is None:
            raise UnknownShelterError(f"no shelter {shelter_id!r} (`bcl shelter list` shows the imported ones)")
        return _entry(row)

    def shelters(self, municipality_code: str | None = None) -> list[ShelterEntry]:
        query = f"SELECT {', '.join(_SHELTER_COLUMNS)} FROM shelters"
        values: tuple[str, ...] = ()
        if municipality_code is not None:
            query, values = query + " WHERE municipality_code=?", (municipality_code,)
        return [_entry(row) for row in self._con.execute(query + " ORDER BY municipality_code, shelter_id", values)]

    # -- openings --------------------------------------------------------------------------------

    def open(self, disaster_id: str, shelter_id: str, staff: str, now: dt.datetime,
             at: dt.datetime | None = None) -> Opening:
        """Open a shelter for a declared, not closed disaster (at `at`, default now): its first opening period, or,
        for a shelter closed, the next one (from its closing on); the stays of the earlier periods are kept."""
        if not staff.strip():
            raise ShelterError("name the staff member who opens the shelter (--staff)")
        opened = to_millisecond(now if at is None else at)
        with self.store.transaction():
            disaster = self.store.disaster(disaster_id)
            if disaster.closed_at is not None:
                raise DisasterClosedError(f"disaster {disaster_id} ({disaster.name}) is closed: no shelter opens "
                                          "for it")
            self.shelter(shelter_id)
            if opened < disaster.occurred_at or opened > now:
                raise ShelterError("a shelter opens between the disaster's occurrence and now")
            last = self._opening(disaster_id, shelter_id)
            if last is not None and last.closed_at is None:
                raise ShelterError(f"shelter {shelter_id} is open for this disaster already (since "
                                   f"{last.opened_at.isoformat()})")
            if last is not None and last.closed_at is not None and opened < last.closed_at:
                raise ShelterError(f"shelter {shelter_id} was closed at {last.closed_at.isoformat()}: it opens again "
                                   "at or after its closing")
            period = 1 if last is None else last.period + 1
            self._con.execute("INSERT INTO shelter_openings VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                              (disaster_id, shelter_id, period, _ms(opened), staff.strip()))
        return Opening(disaster_id, shelter_id, opened, None, period)

    def close(self, disaster_id: str, shelter_id: str, staff: str, now: dt.datetime,
              at: dt.datetime | None = None) -> tuple[Opening, int]:
        """Close an open shelter and check out everyone in it, in one transaction with a check-out event for
        each. The opening and how many were checked out."""
        if not staff.strip():
            raise ShelterError("name the staff member who closes the shelter (--staff)")
        closed = to_millisecond(now if at is None else at)
        with self.store.transaction():
            self.store.disaster(disaster_id)
            opening = self._opening(disaster_id, shelter_id)
            if opening is None:
                self.shelter(shelter_id)
                raise ShelterError(f"shelter {shelter_id} was not opened for this disaster")
            if opening.closed_at is not None:
                raise ShelterError(f"shelter {shelter_id} was already closed at {opening.closed_at.isoformat()}")
            return self._close_within(opening, staff.strip(), closed, now)

    def close_disaster(self, disaster_id: str, at: dt.datetime | None, now: dt.datetime) -> tuple[Disaster, int]:
        """Close a disaster (DisasterStore.close_disaster: final, its CLOSED event) and, in the same transaction,
        every shelter still open for it at the disaster's closing time, everyone in them checked out as closing a
        shelter does. The disaster and how many shelters were closed."""
        with self.store.transaction():
            disaster = self.store.close_disaster_within(disaster_id, at, now)
            assert disaster.closed_at is not None
            still_open = [o for o in self.openings(disaster_id) if o.closed_at is None]
            for opening in still_open:
                if opening.opened_at > disaster.closed_at:
                    raise ShelterError(f"shelter {opening.shelter_id} opened at {opening.opened_at.isoformat()}, "
                                       f"after {disaster.closed_at.isoformat()}: close the disaster at or after it")
                self._close_within(opening, CLOSED_WITH_DISASTER, disaster.closed_at, now)
                crash_point("disaster_close.mid_shelters")
        return disaster, len(still_open)

    def _close_within(self, opening: Opening, staff: str, closed: dt.datetime, now: dt.datetime
                      ) -> tuple[Opening, int]:
        """Inside a transaction: end an open period at `closed` and check out everyone in the shelter then."""
        disaster_id, shelter_id = opening.disaster_id, opening.shelter_id
        if not opening.opened_at <= closed <= now:
            raise ShelterError("a shelter closes between its opening and now")
        self._con.execute("UPDATE shelter_openings SET closed_at=?, closed_by=? WHERE disaster_id=? AND "
                          "shelter_id=? AND period=?", (_ms(closed), staff, disaster_id, shelter_id, opening.period))
        people = [_Person(m, r) for m, r in self._con.execute(
            "SELECT DISTINCT municipality_code, resident_code FROM shelter_stays WHERE disaster_id=? AND "
            "shelter_id=? AND checked_in_at >= ? AND (checked_out_at IS NULL OR checked_out_at > ?)",
            (disaster_id, shelter_id, _ms(opening.opened_at), _ms(closed)))]
        shelter = self.shelter(shelter_id).shelter
        for person in people:
            after = self._recompute(disaster_id, person)
            self._announce(disaster_id, shelter, person, StayAction.CHECK_OUT, TokenKind.SHELTER_CLOSED,
                           str(uuid.uuid4()), None, closed, Outcome.APPLIED, after, now)
        return self._opening(disaster_id, shelter_id) or opening, len(people)

    def openings(self, disaster_id: str, municipality_code: str | None = None, *, every_period: bool = False
                 ) -> list[Opening]:
        """The shelters opened for the disaster (of one municipality), each by its last opening period (open, or
        closed and not opened again), by shelter id; with `every_period`, every period, oldest first."""
        query = ("SELECT o.shelter_id, o.period, o.opened_at, o.closed_at FROM shelter_openings o JOIN shelters s "
                 "USING (shelter_id) WHERE o.disaster_id=?")
        values: list[str] = [disaster_id]
        if municipality_code is not None:
            query += " AND s.municipality_code=?"
            values.append(municipality_code)
        if not every_period:
            query += (" AND o.period = (SELECT max(period) FROM shelter_openings l WHERE l.disaster_id=o.disaster_id "
                      "AND l.shelter_id=o.shelter_id)")
        return [Opening(disaster_id, s, _instant(o), _maybe_instant(c), n)
                for s, n, o, c in self._con.execute(query + " ORDER BY o.shelter_id, o.period", values)]

    def _opening(self, disaster_id: str, shelter_id: str) -> Opening | None:
        """The shelter's last opening period for the disaster, if it was opened."""
        row = self._con.execute("SELECT period, opened_at, closed_at FROM shelter_openings WHERE disaster_id=? AND "
                                "shelter_id=? ORDER BY period DESC LIMIT 1", (disaster_id, shelter_id)).fetchone()
        return None if row is None else Opening(disaster_id, shelter_id, _instant(row[1]), _maybe_instant(row[2]),
                                                row[0])

    def _periods(self, disaster_id: str, shelter_id: str | None = None) -> dict[str, list[OpeningPeriod]]:
        """Shelter id → its opening periods for the disaster (of one shelter), oldest first."""
        query = "SELECT shelter_id, opened_at, closed_at FROM shelter_openings WHERE disaster_id=?"
        values = (disaster_id,) if shelter_id is None else (disaster_id, shelter_id)
        found: dict[str, list[OpeningPeriod]] = {}
        for s, o, c in self._con.execute(query + ("" if shelter_id is None else " AND shelter_id=?")
                                         + " ORDER BY shelter_id, period", values):
            found.setdefault(s, []).append(OpeningPeriod(_instant(o), _maybe_instant(c)))
        return found

    # -- the terminals' events -------------------------------------------------------------------

    def receive(self, batch: Sequence[TerminalEvent], now: dt.datetime) -> list[Receipt]:
        """Take a terminal's batch in one transaction (see the module doc): one receipt per event, in order."""
        with self.store.transaction():
            fresh: list[tuple[TerminalEvent, Shelter, _Person]] = []
            receipts: dict[str, Receipt] = {}
            for item in batch:
                known = self._stored_receipt(item.event.event_id)
                if known is not None:
                    receipts[item.event.event_id] = known
                    continue
                try:
                    shelter, person = self._check(item)
                except (StayError, ShelterError, UnknownDisasterError) as exc:
                    self._refuse(item, refusal_code(exc), str(exc), now)
                    receipts[item.event.event_id] = Receipt(item.event.event_id, ReceiptStatus.REFUSED, str(exc))
                    continue
                e = item.event
                self._con.execute(
                    "INSERT INTO shelter_stay_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.event_id, item.disaster_id, e.shelter_id, e.action.value, _ms(e.occurred_at), e.terminal_id,
                     e.terminal_sequence, item.token_kind.value, person.municipality_code, person.resident_code,
                     Outcome.APPLIED.value, _ms(now)))
                crash_point("shelter_intake.mid_batch")
                fresh.append((item, shelter, person))
            after: dict[tuple[str, _Person], PersonStays] = {}
            for item, _, person in fresh:
                if (item.disaster_id, person) not in after:
                    after[item.disaster_id, person] = self._recompute(item.disaster_id, person)
            for item, shelter, person in fresh:
                e, state = item.event, after[item.disaster_id, person]
                outcome = state.outcomes[e.event_id]
                self._announce(item.disaster_id, shelter, person, e.action, item.token_kind, e.event_id, e,
                               e.occurred_at, outcome, state, now)
                receipts[e.event_id] = Receipt(e.event_id, ReceiptStatus(outcome.value),
                                               _detail(e, outcome, state))
            return [receipts[item.event.event_id] for item in batch]

    def _check(self, item: TerminalEvent) -> tuple[Shelter, _Person]:
        e = item.event
        self.store.disaster(item.disaster_id)
        shelter = self.shelter(e.shelter_id).shelter
        periods = self._periods(item.disaster_id, e.shelter_id).get(e.shelter_id, [])
        if not periods:
            raise StayError(f"shelter {e.shelter_id} ({shelter.name}) is not open for this disaster",
                            RefusalCode.SHELTER_NOT_OPEN)
        if not shelter_open_at(periods, e.occurred_at):
            opened = "; ".join(f"opened {p.opened_at.isoformat()}"
                               + ("" if p.closed_at is None else f", closed {p.closed_at.isoformat()}")
                               for p in periods)
            raise StayError(f"shelter {e.shelter_id} ({shelter.name}) was not open at {e.occurred_at.isoformat()} "
                            f"({opened})", RefusalCode.SHELTER_NOT_OPEN)
        return shelter, self._person(item)

    def _person(self, item: TerminalEvent) -> _Person:
        """The ledger person the token names, or StayError (unknown, or ambiguous for a staff entry)."""
        if not self._has_ledger():
            raise StayError("no ledger was built for this disaster yet: no one can be found", RefusalCode.NO_LEDGER)
        token = item.token
        if REFUSED_TOKEN in token:
            raise StayError(token[REFUSED_TOKEN], RefusalCode.BAD_CERTIFICATE)
        if item.token_kind is TokenKind.CARD:
            serial = token.get("serial", "")
            rows = self._con.execute(
                "SELECT municipality_code, resident_code FROM ledger_residents WHERE disaster_id=? AND "
                "instr(',' || jpki_serials || ',', ?) > 0", (item.disaster_id, f",{serial},")).fetchall()
            if not rows:
                raise StayError(f"the card (certificate {serial}) is of no resident in this disaster's register: "
                                "enter the person by name and birth date", RefusalCode.UNKNOWN_PERSON)
        elif item.token_kind is TokenKind.QR:
            shelter_pass = read_pass(token.get("text", ""), self._pass_key)
            if shelter_pass.disaster_id != item.disaster_id:
                raise StayError("the registration QR is of another disaster", RefusalCode.BAD_QR)
            rows = self._con.execute(
                "SELECT municipality_code, resident_code FROM ledger_residents WHERE disaster_id=? AND "
                "municipality_code=? AND resident_code=?",
                (item.disaster_id, shelter_pass.municipality_code, shelter_pass.resident_code)).fetchall()
            if not rows:
                raise StayError("the registration QR names no one of this disaster's register",
                                RefusalCode.UNKNOWN_PERSON)
        elif item.token_kind is TokenKind.STAFF:
            wanted = kana_key(token.get("kana", ""))
            rows = [(m, r) for m, r, family, given in self._con.execute(
                "SELECT municipality_code, resident_code, family_name_kana, given_name_kana FROM ledger_residents "
                "WHERE disaster_id=? AND birth_date=?", (item.disaster_id, token.get("birth_date", "")))
                if kana_key(family + given) == wanted]
            if not rows:
                raise StayError("no one of this disaster's register has that name (kana) and birth date",
                                RefusalCode.UNKNOWN_PERSON)
            if len(rows) > 1:
                raise StayError(f"{len(rows)} people of this disaster's register have that name (kana) and birth "
                                "date: use the card or the registration QR", RefusalCode.AMBIGUOUS_PERSON)
        else:
            raise StayError(f"a terminal does not send {item.token_kind.value} events", RefusalCode.BAD_TOKEN)
        if len(rows) > 1:
            raise StayError("the card matches more than one resident of the register: enter the person by name",
                            RefusalCode.AMBIGUOUS_PERSON)
        return _Person(*rows[0])

    def ledger_person(self, disaster_id: str, municipality_code: str, resident_code: str) -> None:
        """StayError unless the person is in the disaster's ledger (for whom a registration QR is printed)."""
        self.store.disaster(disaster_id)
        found = self._has_ledger() and self._con.execute(
            "SELECT 1 FROM ledger_residents WHERE disaster_id=? AND municipality_code=? AND resident_code=?",
            (disaster_id, municipality_code, resident_code)).fetchone() is not None
        if not found:
            raise StayError(f"no resident {municipality_code}-{resident_code} in the ledger of disaster {disaster_id}")

    def _has_ledger(self) -> bool:
        return self._con.execute("SELECT 1 FROM sqlite_master WHERE type='view' AND name='ledger_residents'"
                                 ).fetchone() is not None

    def _refuse(self, item: TerminalEvent, code: RefusalCode, reason: str, now: dt.datetime) -> None:
        """Keep a refused event with its reason, and its dead letter in the outbox, in the batch's transaction: a
        copy sent again finds the refusal (`_stored_receipt`), so each refused event is dead-lettered once."""
        e = item.event
        self._con.execute("INSERT INTO shelter_refused_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (e.event_id, item.disaster_id, e.shelter_id, e.action.value, _ms(e.occurred_at),
                           e.terminal_id, e.terminal_sequence, item.token_kind.value, reason, _ms(now)))
        self.store.append_outbox(self.dead_letter_topic, item.disaster_id.encode(), self._dead_letter_serde,
                                 dead_letter_of(item, code, reason, now), now)

    def _stored_receipt(self, event_id: str) -> Receipt | None:
        refused = self._con.execute("SELECT reason FROM shelter_refused_events WHERE event_id=?",
                                    (event_id,)).fetchone()
        if refused is not None:
            return Receipt(event_id, ReceiptStatus.REFUSED, refused[0], duplicate=True)
        row = self._con.execute("SELECT outcome, shelter_id FROM shelter_stay_events WHERE event_id=?",
                                (event_id,)).fetchone()
        if row is None:
            return None
        return Receipt(event_id, ReceiptStatus(row[0]), f"already taken ({row[0].lower()} at {row[1]})",
                       duplicate=True)

    def _recompute(self, disaster_id: str, person: _Person) -> PersonStays:
        """Inside a transaction: the person's stays from all their events, written over the old ones."""
        key = (disaster_id, person.municipality_code, person.resident_code)
        events = [StayEvent(i, StayAction(a), s, _instant(o), t, n) for i, a, s, o, t, n in self._con.execute(
            "SELECT event_id, action, shelter_id, occurred_at, terminal_id, terminal_sequence FROM "
            "shelter_stay_events WHERE disaster_id=? AND municipality_code=? AND resident_code=?", key)]
        state = stays(events, self._periods(disaster_id))
        self._con.execute("DELETE FROM shelter_stays WHERE disaster_id=? AND municipality_code=? AND "
                          "resident_code=?", key)
        self._con.executemany("INSERT INTO shelter_stays VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (*key, s.shelter_id, _ms(s.checked_in_at), None if s.checked_out_at is None else _ms(s.checked_out_at),
             None if s.ended_by is None else s.ended_by.value) for s in state.stays])
        self._con.executemany("UPDATE shelter_stay_events SET outcome=? WHERE event_id=?",
                              [(o.value, i) for i, o in state.outcomes.items()])
        return state

    def _announce(self, disaster_id: str, shelter: Shelter, person: _Person, action: StayAction, kind: TokenKind,
                  stay_event_id: str, event: StayEvent | None, occurred_at: dt.datetime, outcome: Outcome,
                  state: PersonStays, now: dt.datetime) -> None:
        current = state.current
        self.store.append_outbox(self.topic, disaster_id.encode(), self._serde, {
            "disaster_id": disaster_id, "stay_event_id": stay_event_id,
            "terminal_id": None if event is None else event.terminal_id,
            "terminal_sequence": None if event is None else event.terminal_sequence,
            "action": action.value, "token_kind": kind.value, "shelter_id": shelter.shelter_id,
            "shelter_municipality_code": shelter.municipality_code,
            "municipality_code": person.municipality_code, "resident_code": person.resident_code,
            "occurred_at": to_millisecond(occurred_at), "outcome": outcome.value,
            "current_shelter_id": None if current is None else current.shelter_id,
            "current_since": None if current is None else current.checked_in_at,
            "recorded_at": to_millisecond(now)}, now)

    # -- reading ---------------------------------------------------------------------------------

    def occupancy(self, disaster_id: str, at: dt.datetime, municipality_code: str | None = None
                  ) -> list[ShelterOccupancy]:
        """Every shelter opened for the disaster (of one municipality): the headcount at `at` against the
        capacity of that instant's period (day or night)."""
        self.store.disaster(disaster_id)
        period, instant = period_of(at), _ms(at)
        counts = dict(self._con.execute(
            "SELECT shelter_id, count(*) FROM shelter_stays WHERE disaster_id=? AND checked_in_at <= ? AND "
            "(checked_out_at IS NULL OR checked_out_at > ?) GROUP BY shelter_id", (disaster_id, instant, instant)))
        found = []
        periods = {}
        for opening in self.openings(disaster_id, municipality_code, every_period=True):
            # The period in effect at `at` (the last opened by then), else the first.
            if opening.opened_at <= at or opening.shelter_id not in periods:
                periods[opening.shelter_id] = opening
        for opening in periods.values():
            entry = self.shelter(opening.shelter_id)
            found.append(ShelterOccupancy(entry, opening, Occupancy(
                opening.shelter_id, counts.get(opening.shelter_id, 0), period,
                capacity_for(period, entry.capacity, entry.shelter.published_capacity))))
        return found

    def evacuees(self, disaster_id: str, *, shelter_id: str | None = None, municipality_code: str | None = None
                 ) -> list[Evacuee]:
        """Who is checked in now, where and since when; at one shelter, or residents of one municipality
        (wherever they are: another municipality's shelter too). Names from the ledger, for staff."""
        self.store.disaster(disaster_id)
        query = ("SELECT s.municipality_code, s.resident_code, l.family_name, l.given_name, s.shelter_id, "
                 "s.checked_in_at FROM shelter_stays s LEFT JOIN ledger_residents l ON l.disaster_id = s.disaster_id "
                 "AND l.municipality_code = s.municipality_code AND l.resident_code = s.resident_code "
                 "WHERE s.disaster_id=? AND s.checked_out_at IS NULL")
        values: list[str] = [disaster_id]
        if shelter_id is not None:
            query += " AND s.shelter_id=?"
            values.append(shelter_id)
        if municipality_code is not None:
            query += " AND s.municipality_code=?"
            values.append(municipality_code)
        if not self._has_ledger():  # then no one can have checked in
            return []
        rows = self._con.execute(query + " ORDER BY s.shelter_id, s.checked_in_at", values).fetchall()
        return [Evacuee(m, r, f, g, s, _instant(c)) for m, r, f, g, s, c in rows]

    def stays_of(self, disaster_id: str, municipality_code: str, resident_code: str) -> list[Stay]:
        """A person's stays, oldest first (the current one last, open)."""
        return [Stay(s, _instant(i), _maybe_instant(o), None if e is None else Ending(e))
                for s, i, o, e in self._con.execute(
                    "SELECT shelter_id, checked_in_at, checked_out_at, ended_by FROM shelter_stays WHERE "
                    "disaster_id=? AND municipality_code=? AND resident_code=? ORDER BY checked_in_at",
                    (disaster_id, municipality_code, resident_code))]

    def refused(self, disaster_id: str) -> list[tuple[str, str, str]]:
        """The refused events of a disaster: (event id, shelter id, reason), oldest first."""
        return [(i, s, r) for i, s, r in self._con.execute(
            "SELECT event_id, shelter_id, reason FROM shelter_refused_events WHERE disaster_id=? ORDER BY "
            "received_at, rowid", (disaster_id,))]


def refusal_code(exc: StayError | ShelterError | UnknownDisasterError) -> RefusalCode:
    if isinstance(exc, StayError):
        return exc.code
    if isinstance(exc, UnknownShelterError):
        return RefusalCode.UNKNOWN_SHELTER
    if isinstance(exc, UnknownDisasterError):
        return RefusalCode.UNKNOWN_DISASTER
    return RefusalCode.REFUSED


def dead_letter_of(item: TerminalEvent, code: RefusalCode, reason: str, now: dt.datetime) -> dict[str, Any]:
    """The DeadLetter of a refused terminal event. Its input was no Kafka message but the terminal's queue, an
    ordered log of its own: the source is `topics.shelter_terminal_source(terminal id)`, partition 0, the offset the
    event's sequence on the terminal (so the three name it, as they name a message, and a copy the relay sends again
    is known by them). The value is what the store keeps of a refused event (`shelter_refused_events`: ids,
    shelter, action, time, token kind) as JSON: the token itself — a name in kana and a birth date, a card's
    certificate, a QR naming a resident — stays on the terminal, since a dead letter carries no personal data in
    plain text; the reason names no one either (at most a card's certificate serial, as the store's does)."""
    e = item.event
    value = {"event_id": e.event_id, "disaster_id": item.disaster_id, "shelter_id": e.shelter_id,
             "action": e.action.value, "occurred_at": to_millisecond(e.occurred_at).isoformat(),
             "terminal_id": e.terminal_id, "terminal_sequence": e.terminal_sequence,
             "token_kind": item.token_kind.value}
    return {"processor": DEAD_LETTER_PROCESSOR, "topic": topics.shelter_terminal_source(e.terminal_id),
            "partition": 0, "offset": e.terminal_sequence, "key": item.disaster_id.encode(),
            "value": json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), "reason_code": code.value,
            "reason": reason, "failed_at": to_millisecond(now)}


def _detail(event: StayEvent, outcome: Outcome, state: PersonStays) -> str:
    current = state.current
    if outcome is Outcome.REPEATED:
        since = "" if current is None else f" since {current.checked_in_at.isoformat()}"
        return f"refused: already checked in at {event.shelter_id}{since} (a second check-in changes nothing)"
    if outcome is Outcome.UNMATCHED:
        return (f"refused: no check-in at {event.shelter_id} before this check-out (kept: it is applied if a "
                "check-in of an offline terminal arrives)")
    where = "checked out" if current is None else f"checked in at {current.shelter_id}"
    return f"{event.action.value.lower().replace('_', '-')} applied: now {where}"
