"""The certificate serials' holders, shared by the materialiser's processes (SQLite, in the snapshot store).

Why shared and not per process: a serial is unique nationally (docs/domain.md §2.3) and its holders are records
of any municipality, keyed to any partition of bcl.register.diffs, so no partitioning of the input puts a
serial's holders with the change that claims it. The check stays exact by making it one atomic step on one
shared index: `claim` reads the holders of the change's serials and, if none is another record, replaces the
record's serials, in one IMMEDIATE transaction (SQLite's write lock serialises the processes' claims). The rule
itself is domain.serial_holders.serial_conflict.

Consistency with the history (the durable truth): a claim becomes visible before the history batch of its
change is written. If the process dies in between, the change is re-delivered to the partition's next owner
and applied then (its record holds the claim already, so it passes); the index is never ahead of what will be
applied. It is rebuilt from the history when it was never built (a store from before it) and after a resync
(which rewrites a municipality's history with no materialiser running): `rebuild`, under the writer lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from domain.register_validation import Rejection
from domain.serial_holders import RecordKey, serial_conflict
from infra.sqlite_database import immediate_transaction, open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS holders (serial TEXT PRIMARY KEY, municipality_code TEXT NOT NULL,
                                    resident_code TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holders_record ON holders (municipality_code, resident_code);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SerialIndex:
    def __init__(self, path: Path) -> None:
        # The serials are personal data: private. Long busy timeout: another process's claim holds the write lock
        # for the time of one statement. NORMAL: durable against a process crash, and rebuilt from the history.
        self._con = open_database(path, synchronous="NORMAL", busy_timeout_s=120)
        self._con.executescript(_SCHEMA)
        self._batch = self._begun = False

    def close(self) -> None:
        self._con.close()

    @property
    def built(self) -> bool:
        return self._con.execute("SELECT 1 FROM meta WHERE key = 'built'").fetchone() is not None

    def __len__(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM holders").fetchone()[0])

    def holding(self) -> set[RecordKey]:
        """The records that hold a serial."""
        return set(self._con.execute("SELECT DISTINCT municipality_code, resident_code FROM holders").fetchall())

    def rebuild(self, records: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        """Replace the index by the current records' serials (municipality code, resident code, serials)."""
        con = self._con
        with immediate_transaction(con):
            con.execute("DELETE FROM holders")
            # A history from before the rule may hold a serial twice: the first holder stays.
            con.executemany("INSERT OR IGNORE INTO holders VALUES (?, ?, ?)",
                            ((serial, muni, rc) for muni, rc, serials in records for serial in serials))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('built', '1')")

    def forget(self) -> None:
        """Mark the index stale (a resync changed the history): the next materialiser rebuilds it."""
        self._con.execute("DELETE FROM meta WHERE key = 'built'")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The claims of one batch in one transaction, begun at its first claim (a claim alone is a transaction
        of its own: about 85 µs here, against about 19 µs inside one). The write lock is held from the first
        claim to the end of the batch, so the caller keeps that stretch short (sequence and serial decisions
        only, the validation before it)."""
        self._batch, self._begun = True, False
        try:
            yield
            if self._begun:
                self._con.execute("COMMIT")
        except BaseException:
            if self._begun:
                self._con.execute("ROLLBACK")
            raise
        finally:
            self._batch = self._begun = False

    def claim(self, record: RecordKey, current: bool, serials: Sequence[str], *,
              holds: bool = True) -> Rejection | None:
        """The record's latest state becomes current with these serials, or not current: refused (and nothing
        changed) if another current record holds one of them; otherwise the record's serials are replaced.
        `holds=False`: the caller knows the record holds no serial (a new record), so none is released."""
        if self._batch:
            if not self._begun:
                self._con.execute("BEGIN IMMEDIATE")
                self._begun = True
            return self._claim(record, current, serials, holds)
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            rejection = self._claim(record, current, serials, holds)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return rejection

    def _claim(self, record: RecordKey, current: bool, serials: Sequence[str], holds: bool) -> Rejection | None:
        con = self._con
        held = {}
        if current and serials:
            marks = ", ".join("?" * len(serials))
            held = {serial: (muni, rc) for serial, muni, rc in con.execute(
                f"SELECT serial, municipality_code, resident_code FROM holders WHERE serial IN ({marks})",
                list(serials))}
        rejection = serial_conflict(record, current, serials, held)
        if rejection is None:
            if holds:
                con.execute("DELETE FROM holders WHERE municipality_code = ? AND resident_code = ?", record)
            if current:
                con.executemany("INSERT OR IGNORE INTO holders VALUES (?, ?, ?)",
                                [(serial, *record) for serial in serials])
        return rejection
