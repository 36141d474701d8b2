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
        # Within a batch's transaction: the serials expected, the holders read (None: none), the serials each
        # holder is known to hold, and each changed record's (released its serials?, serials claimed).
        self._expected: set[str] = set()
        self._known: dict[str, RecordKey | None] = {}
        self._known_of: dict[RecordKey, set[str]] = {}
        self._changed: dict[RecordKey, tuple[bool, set[str]]] = {}

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
        """The claims of one batch in one transaction, begun at its first claim, which also reads the holders of
        the serials the batch expects (`expect`) in one statement. The claims are then decided on what was read,
        kept up to date by the batch's own claims, and the batch's changes are written at its end (a delete of
        the released records' serials and an insert of the claimed ones, one executemany each): a handful of
        statements a batch instead of two or three a claim (15–20 % of the index's CPU in a full load,
        bench/serial_claims.py; the rest is SQLite's B-tree work per serial). Exact across processes: the write
        lock is held from the first read to the commit, so no other process's claim comes in between. The caller
        keeps that stretch short (sequence and serial decisions only, the validation before it)."""
        self._batch, self._begun = True, False
        try:
            yield
            if self._begun:
                self._write()
                self._con.execute("COMMIT")
        except BaseException:
            if self._begun:
                self._con.execute("ROLLBACK")
            raise
        finally:
            self._batch = self._begun = False
            self._expected = set()
            self._known.clear()
            self._known_of.clear()
            self._changed.clear()

    def expect(self, serials: Iterable[str]) -> None:
        """Serials this batch's claims will ask for (those of its current records): read together at the next
        claim that needs a holder, not one statement a claim."""
        self._expected.update(serials)

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
        with self.batch():
            return self.claim(record, current, serials, holds=holds)

    def _claim(self, record: RecordKey, current: bool, serials: Sequence[str], holds: bool) -> Rejection | None:
        if current and serials:
            self._read(serials)
        known = self._known
        held = {serial: holder for serial in serials if (holder := known.get(serial)) is not None}
        rejection = serial_conflict(record, current, serials, held)
        if rejection is None:
            released, mine = self._changed.get(record, (False, set()))
            if holds:  # the record's serials go: those read so far are free from now on
                released, mine = True, set()
                for serial in self._known_of.pop(record, set()):
                    known[serial] = None
            if current:
                mine |= set(serials)
                self._known_of.setdefault(record, set()).update(serials)
                known.update(dict.fromkeys(serials, record))
            self._changed[record] = (released, mine)
        return rejection

    def _read(self, serials: Sequence[str]) -> None:
        """The holders of the serials not read yet in this transaction (and of the batch's expected ones), as the
        batch left them: a holder this batch released holds only what it claimed again since."""
        wanted = [s for s in self._expected.union(serials) if s not in self._known]
        self._expected = set()
        found: dict[str, RecordKey | None] = dict.fromkeys(wanted)
        for i in range(0, len(wanted), _READ_CHUNK):
            chunk = wanted[i:i + _READ_CHUNK]
            for serial, muni, rc in self._con.execute(
                    f"SELECT serial, municipality_code, resident_code FROM holders WHERE serial IN "
                    f"({', '.join('?' * len(chunk))})", chunk):
                holder = (muni, rc)
                released, mine = self._changed.get(holder, (False, set()))
                if not released or serial in mine:
                    found[serial] = holder
        self._known.update(found)
        for serial, holder in found.items():
            if holder is not None:
                self._known_of.setdefault(holder, set()).add(serial)

    def _write(self) -> None:
        """The batch's claims to the index: the released records' serials deleted, then the claimed ones inserted
        (the claimed serials of different records never overlap: a claim of a serial held by another is refused)."""
        con = self._con
        con.executemany("DELETE FROM holders WHERE municipality_code = ? AND resident_code = ?",
                        [record for record, (released, _) in self._changed.items() if released])
        # In serial order: the inserts walk the index's B-tree once, page after page, not back and forth.
        con.executemany("INSERT OR IGNORE INTO holders VALUES (?, ?, ?)",
                        sorted((serial, *record) for record, (_, mine) in self._changed.items() for serial in mine))


_READ_CHUNK = 900  # serials read per statement (below SQLite's limit of bound parameters)
