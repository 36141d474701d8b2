"""The certificate worker's durable record of answered requests (SQLite, WAL, synchronous=FULL).

Why it exists: the worker must answer every request exactly once and emit every certificate exactly
once, across crashes. Kafka transactions would do it in production, but the embedded cluster
(librdkafka's mock) accepts the transactional calls without their effect (offsets sent to a
transaction are not committed, aborted messages stay visible to read_committed consumers, a second
producer with the same transactional.id does not fence the first), so the worker cannot rely on them
and uses this ledger instead, which works the same on both clusters:

1. claim: once a batch is decided and rendered, and before anything leaves the worker, every request
   position (topic, partition, offset) is recorded as `pending` with its request id and the exact
   bytes of everything it will emit: the response, the CertificateIssued messages (certificate ids
   are deterministic: uuid5 of request id and copy) and the front rasters for the issuance archive;
2. the certificates are archived, the responses produced and flushed, *then* the CertificateIssued
   events produced and flushed (an issued event is never out before its response);
3. the batch is marked `delivered` (its stored bytes are dropped), with the highest offset each
   output partition reached;
4. the consumer offsets are committed.

After a crash, a request position already `delivered` is skipped when it is re-delivered. A
`pending` one is in doubt: the worker scans the output topics from the recorded marks and produces,
from the stored bytes, only what is not there yet (the archive is idempotent for the same bytes).
A claimed request is never decided or rendered twice, so its answer cannot change. The request id
column is also the replay guard: a request id already claimed at another position is a replay.
Rows older than the retention are pruned: by then the request time is far outside the freshness
window, so a replay is refused as expired anyway.

One worker process owns a ledger (one writer); it is not shared between hosts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.private_files import create_private_file

Position = tuple[str, int, int]  # request topic, partition, offset
OutputPartition = tuple[str, int]

PENDING = "pending"
DELIVERED = "delivered"
DEFAULT_RETENTION_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class IssuedMessage:
    """One CertificateIssued message as it is produced (so a recovery re-sends the same bytes)."""

    certificate_id: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Claim:
    position: Position
    request_id: str
    status: str  # ISSUED or REFUSED
    response_key: bytes
    response: bytes  # the encoded CertificateResponse (with the PDF)
    issued: Sequence[IssuedMessage] = field(default_factory=tuple)
    issued_at: float | None = None  # epoch seconds, for the archive record
    municipality_code: str | None = None
    fronts: Sequence[bytes] = field(default_factory=tuple)  # PNG of each sheet's front, for the archive


class RequestLedger:
    def __init__(self, path: Path, retention_seconds: float = DEFAULT_RETENTION_SECONDS) -> None:
        create_private_file(path)  # it holds the answers (PDFs) until delivered: 0600 in a 0700 folder
        self.path = path
        self.retention_seconds = retention_seconds
        self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.executescript("""
            CREATE TABLE IF NOT EXISTS requests (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
                request_id TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL, claimed_at REAL NOT NULL,
                PRIMARY KEY (topic, partition, "offset"));
            CREATE INDEX IF NOT EXISTS requests_by_id ON requests (request_id);
            CREATE TABLE IF NOT EXISTS issued (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
                certificate_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (certificate_id));
            CREATE INDEX IF NOT EXISTS issued_by_position ON issued (topic, partition, "offset");
            CREATE TABLE IF NOT EXISTS outputs (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
                response_key BLOB NOT NULL, response BLOB NOT NULL, issued_at REAL, municipality_code TEXT,
                PRIMARY KEY (topic, partition, "offset"));
            CREATE TABLE IF NOT EXISTS fronts (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
                sheet INTEGER NOT NULL, png BLOB NOT NULL,
                PRIMARY KEY (topic, partition, "offset", sheet));
            CREATE TABLE IF NOT EXISTS output_marks (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
                PRIMARY KEY (topic, partition));
        """)

    def close(self) -> None:
        self._con.close()

    # -- reading -------------------------------------------------------------------------------

    def state_of(self, position: Position) -> str | None:
        row = self._con.execute('SELECT state FROM requests WHERE topic=? AND partition=? AND "offset"=?',
                                position).fetchone()
        return row[0] if row else None

    def is_claimed_elsewhere(self, request_id: str, position: Position) -> bool:
        """Whether the request id was already claimed at another position (a replay)."""
        row = self._con.execute(
            'SELECT 1 FROM requests WHERE request_id=? AND NOT (topic=? AND partition=? AND "offset"=?) LIMIT 1',
            (request_id, *position)).fetchone()
        return row is not None

    def pending(self) -> list[Claim]:
        rows = self._con.execute(
            'SELECT topic, partition, "offset", request_id, status FROM requests WHERE state=?', (PENDING,)).fetchall()
        claims = []
        for topic, partition, offset, request_id, status in rows:
            issued = self._con.execute(
                'SELECT certificate_id, key, value FROM issued WHERE topic=? AND partition=? AND "offset"=? '
                'ORDER BY certificate_id', (topic, partition, offset)).fetchall()
            key, response, issued_at, municipality = self._con.execute(
                'SELECT response_key, response, issued_at, municipality_code FROM outputs '
                'WHERE topic=? AND partition=? AND "offset"=?', (topic, partition, offset)).fetchone()
            fronts = [png for (png,) in self._con.execute(
                'SELECT png FROM fronts WHERE topic=? AND partition=? AND "offset"=? ORDER BY sheet',
                (topic, partition, offset))]
            claims.append(Claim((topic, partition, offset), request_id, status, bytes(key), bytes(response),
                                tuple(IssuedMessage(c, bytes(k), bytes(v)) for c, k, v in issued), issued_at,
                                municipality, tuple(bytes(f) for f in fronts)))
        return claims

    def output_marks(self) -> dict[OutputPartition, int]:
        return {(t, p): o for t, p, o in self._con.execute('SELECT topic, partition, "offset" FROM output_marks')}

    # -- writing (each call is one SQLite transaction) -----------------------------------------

    def claim(self, claims: Iterable[Claim]) -> None:
        now = time.time()
        with self._transaction():
            for c in claims:
                self._con.execute('INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)',
                                  (*c.position, c.request_id, c.status, PENDING, now))
                self._con.executemany('INSERT INTO issued VALUES (?, ?, ?, ?, ?, ?)',
                                      [(*c.position, m.certificate_id, m.key, m.value) for m in c.issued])
                self._con.execute('INSERT INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?)',
                                  (*c.position, c.response_key, c.response, c.issued_at, c.municipality_code))
                self._con.executemany('INSERT INTO fronts VALUES (?, ?, ?, ?, ?)',
                                      [(*c.position, i, png) for i, png in enumerate(c.fronts)])

    def mark_delivered(self, positions: Sequence[Position], marks: Mapping[OutputPartition, int]) -> None:
        """The batch is out; its output partitions reached at least these offsets."""
        with self._transaction():
            self._con.executemany('UPDATE requests SET state=? WHERE topic=? AND partition=? AND "offset"=?',
                                  [(DELIVERED, *p) for p in positions])
            # Delivered messages' bytes are no longer needed for a recovery.
            for table in ("issued", "outputs", "fronts"):
                self._con.executemany(f'DELETE FROM {table} WHERE topic=? AND partition=? AND "offset"=?',
                                      list(positions))
            self._con.executemany(
                'INSERT INTO output_marks VALUES (?, ?, ?) ON CONFLICT (topic, partition) '
                'DO UPDATE SET "offset" = max("offset", excluded."offset")',
                [(t, p, o) for (t, p), o in marks.items()])

    def prune(self, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - self.retention_seconds
        with self._transaction():
            return self._con.execute('DELETE FROM requests WHERE state=? AND claimed_at < ?',
                                     (DELIVERED, cutoff)).rowcount

    def counts(self) -> dict[str, int]:
        return dict(self._con.execute("SELECT state, count(*) FROM requests GROUP BY state").fetchall())

    class _Txn:
        def __init__(self, con: sqlite3.Connection) -> None:
            self._con = con

        def __enter__(self) -> None:
            self._con.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            self._con.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _transaction(self) -> RequestLedger._Txn:
        return RequestLedger._Txn(self._con)
