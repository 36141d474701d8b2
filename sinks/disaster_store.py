"""The disaster store: what staff enter for disaster support, and its outbox (SQLite, WAL, synchronous=FULL).

Why it exists: staff entries must survive the loss of every process, and the embedded cluster lives in memory.
So a change is acknowledged once it is in this file, not once it is on Kafka. Each change is one SQLite
transaction that writes the new state *and* an outbox row holding the exact bytes of the event that announces
it (Confluent-framed Avro, with a fresh event id); nothing is half written, and no change exists without its
event or the other way round. The disaster relay (streams.disaster_relay) publishes the outbox in order and
marks a row published, with the partition and offset it landed at, only after the broker acknowledged it.
A crash between the acknowledgement and the mark sends the row again with the same bytes: delivery is at
least once, and consumers deduplicate by the event id in the contract (schemas/avro/disaster_event.avsc).

The outbox keeps the published rows too: it is the durable log of the disaster events, from which a new (empty)
cluster is filled again (`reset_published`), so that downstream processors can rebuild their state.

Written by short-lived commands (declare, close) and read by the relay in another process: WAL lets them work
side by side, writers take the lock at BEGIN (IMMEDIATE) and wait for each other up to BUSY_TIMEOUT_MS.
0600 in a 0700 folder (infra.private_files): later entries hold personal data.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.disasters import (
    Declaration,
    Disaster,
    DisasterKind,
    UnknownDisasterError,
    closing_time,
    to_millisecond,
)
from infra import topics
from infra.sqlite_database import immediate_transaction, open_database
from schemas.wire import AvroSerde

LAYOUT_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
# Pages of 16 KiB rather than SQLite's 4: a declaration writes a ledger of up to a million rows (about 200 bytes
# each), and larger pages split a quarter as often (15-35 % less time to insert them; bench/disaster_declare.py).
# A store made before keeps its 4 KiB pages: it works the same, only slower to build.
PAGE_SIZE = 16 * 1024

_TABLES = """
    CREATE TABLE IF NOT EXISTS disasters (
        disaster_id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, occurred_at INTEGER NOT NULL,
        declared_at INTEGER NOT NULL, closed_at INTEGER);
    CREATE TABLE IF NOT EXISTS disaster_municipalities (
        disaster_id TEXT NOT NULL REFERENCES disasters, municipality_code TEXT NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code));
    CREATE TABLE IF NOT EXISTS outbox (
        sequence INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, key BLOB NOT NULL,
        value BLOB NOT NULL, recorded_at INTEGER NOT NULL, published_at INTEGER, partition INTEGER,
        "offset" INTEGER);
    CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (sequence) WHERE published_at IS NULL;
"""


@dataclass(frozen=True)
class OutboxEvent:
    """One event to publish, with the bytes written in the transaction of its change."""

    sequence: int
    event_id: str
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Delivery:
    """Where the broker acknowledged an outbox event."""

    sequence: int
    partition: int
    offset: int


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class DisasterStore:
    def __init__(self, path: Path, serde: AvroSerde, topic: str = topics.DISASTER_EVENTS) -> None:
        self.path = path
        self.topic = topic
        self._serde = serde
        self._con = open_database(path, busy_timeout_s=BUSY_TIMEOUT_MS / 1000, page_size=PAGE_SIZE)
        with self._transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            self._con.execute(f"PRAGMA user_version={LAYOUT_VERSION}")

    def close(self) -> None:
        self._con.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection: the other modules of disaster support keep their tables in the same file
        (sinks.disaster_ledger), so that one transaction can span them."""
        return self._con

    def transaction(self) -> AbstractContextManager[None]:
        """One immediate transaction on the store (the write lock taken at BEGIN)."""
        return immediate_transaction(self._con)

    # -- disasters -----------------------------------------------------------------------------

    def declare(self, declaration: Declaration, now: dt.datetime) -> Disaster:
        """Store the declaration and its DECLARED event, in one transaction; durable when this returns."""
        disaster = Disaster(str(uuid.uuid4()), declaration.name, declaration.kind, declaration.municipality_codes,
                            declaration.occurred_at, to_millisecond(now))
        with self._transaction():
            self._con.execute("INSERT INTO disasters VALUES (?, ?, ?, ?, ?, NULL)",
                              (disaster.disaster_id, disaster.name, disaster.kind.value, _ms(disaster.occurred_at),
                               _ms(disaster.declared_at)))
            self._con.executemany("INSERT INTO disaster_municipalities VALUES (?, ?)",
                                  [(disaster.disaster_id, code) for code in disaster.municipality_codes])
            self._append_event("DECLARED", disaster, now)
        return disaster

    def close_disaster(self, disaster_id: str, at: dt.datetime | None, now: dt.datetime) -> Disaster:
        """Close a declared disaster (at `at`, default now) and store its CLOSED event, in one transaction. The
        checks (domain.disasters.closing_time) run inside it, so two staff closing at once cannot both succeed."""
        with self._transaction():
            return self.close_disaster_within(disaster_id, at, now)

    def close_disaster_within(self, disaster_id: str, at: dt.datetime | None, now: dt.datetime) -> Disaster:
        """close_disaster inside a caller's transaction, for the modules on this database whose state ends with
        the disaster in the same transaction (sinks.shelters closes the shelters still open)."""
        disaster = self._disaster(disaster_id)
        closed = closing_time(disaster, now if at is None else at, now)
        self._con.execute("UPDATE disasters SET closed_at=? WHERE disaster_id=?", (_ms(closed), disaster_id))
        disaster = self._disaster(disaster_id)
        self._append_event("CLOSED", disaster, now)
        return disaster

    def disasters(self) -> list[Disaster]:
        """Every disaster, in the order they were declared."""
        ids = [row[0] for row in self._con.execute("SELECT disaster_id FROM disasters ORDER BY declared_at, rowid")]
        return [self._disaster(i) for i in ids]

    def disaster(self, disaster_id: str) -> Disaster:
        """The disaster of that id, or UnknownDisasterError."""
        return self._disaster(disaster_id)

    def _disaster(self, disaster_id: str) -> Disaster:
        row = self._con.execute("SELECT name, kind, occurred_at, declared_at, closed_at FROM disasters "
                                "WHERE disaster_id=?", (disaster_id,)).fetchone()
        if row is None:
            raise UnknownDisasterError(f"no disaster {disaster_id!r} was declared (`bcl disaster list` shows them)")
        name, kind, occurred_at, declared_at, closed_at = row
        codes = tuple(code for (code,) in self._con.execute(
            "SELECT municipality_code FROM disaster_municipalities WHERE disaster_id=? ORDER BY municipality_code",
            (disaster_id,)))
        occurred, declared = _instant(occurred_at), _instant(declared_at)
        assert occurred is not None and declared is not None
        return Disaster(disaster_id, name, DisasterKind(kind), codes, occurred, declared, _instant(closed_at))

    def _append_event(self, event_type: str, disaster: Disaster, now: dt.datetime) -> None:
        record: dict[str, Any] = {
            "event_type": event_type, "disaster_id": disaster.disaster_id, "name": disaster.name,
            "kind": disaster.kind.name, "municipality_codes": list(disaster.municipality_codes),
            "occurred_at": disaster.occurred_at, "declared_at": disaster.declared_at,
            "closed_at": disaster.closed_at, "recorded_at": to_millisecond(now),
        }
        self.append_outbox(self.topic, disaster.disaster_id.encode(), self._serde, record, now)

    def append_outbox(self, topic: str, key: bytes, serde: AvroSerde, record: dict[str, Any],
                      now: dt.datetime) -> int:
        """The outbox row of a change, inside the change's transaction (which holds the write lock, so the
        sequence is the next one): `record` gets a fresh `event_id` and its `sequence`, then is encoded with
        `serde` (the contract of `topic`). The modules of other concepts on this database (sinks.damage_assessment)
        announce their changes through it, so that the relay publishes every change in the order it was made."""
        (last,) = self._con.execute("SELECT coalesce(max(sequence), 0) FROM outbox").fetchone()
        event_id = str(uuid.uuid4())
        record = {"event_id": event_id, "sequence": last + 1, **record}
        self._con.execute("INSERT INTO outbox (sequence, event_id, topic, key, value, recorded_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (last + 1, event_id, topic, key, serde.encode(record), _ms(now)))
        return last + 1

    # -- the outbox ----------------------------------------------------------------------------

    def unpublished(self, limit: int) -> list[OutboxEvent]:
        """The oldest events not yet marked published, in order."""
        rows = self._con.execute("SELECT sequence, event_id, topic, key, value FROM outbox WHERE published_at IS NULL "
                                 "ORDER BY sequence LIMIT ?", (limit,)).fetchall()
        return [OutboxEvent(s, e, t, bytes(k), bytes(v)) for s, e, t, k, v in rows]

    def mark_published(self, deliveries: Sequence[Delivery], now: dt.datetime) -> None:
        with self._transaction():
            self._con.executemany('UPDATE outbox SET published_at=?, partition=?, "offset"=? WHERE sequence=?',
                                  [(_ms(now), d.partition, d.offset, d.sequence) for d in deliveries])

    def published_marks(self) -> dict[tuple[str, int], int]:
        """(topic, partition) → the highest offset an event of the outbox was acknowledged at."""
        rows = self._con.execute('SELECT topic, partition, max("offset") FROM outbox WHERE published_at IS NOT NULL '
                                 "GROUP BY topic, partition")
        return {(t, p): o for t, p, o in rows}

    def reset_published(self, topic: str | None = None) -> int:
        """Mark every event (of `topic`) unpublished, so that the relay sends them all again, in order: for a new
        cluster that does not hold them. Returns how many."""
        with self._transaction():
            return self._con.execute(
                'UPDATE outbox SET published_at=NULL, partition=NULL, "offset"=NULL WHERE published_at IS NOT NULL'
                + ("" if topic is None else " AND topic=?"), () if topic is None else (topic,)).rowcount

    def outbox_counts(self) -> dict[str, int]:
        """How many events are published and how many wait for the relay."""
        published, waiting = self._con.execute(
            "SELECT count(published_at), count(*) - count(published_at) FROM outbox").fetchone()
        return {"published": published, "unpublished": waiting}

    def _transaction(self) -> AbstractContextManager[None]:
        return immediate_transaction(self._con)
