"""The certificate worker's durable record of answered requests (SQLite, WAL, synchronous=FULL).

Why it exists: the worker must answer every request exactly once and emit every certificate exactly
once, across crashes. Kafka transactions would do it in production, but the embedded cluster
(librdkafka's mock) accepts the transactional calls without their effect (offsets sent to a
transaction are not committed, aborted messages stay visible to read_committed consumers, a second
producer with the same transactional.id does not fence the first), so the worker cannot rely on them
and uses this ledger instead, which works the same on both clusters:

1. claim: once a batch is decided and rendered, and before anything leaves the worker, every answered
   message is recorded as `pending` under its request id and position, with the exact bytes of
   everything it will emit: the response, the CertificateIssued messages (certificate ids are
   deterministic: uuid5 of request id and copy) and the front rasters for the issuance archive;
2. the certificates are archived, the responses produced and flushed, *then* the CertificateIssued
   events produced and flushed (an issued event is never out before its response);
3. the batch is marked `delivered` (its stored bytes are dropped), with the highest offset each
   output partition reached;
4. the consumer offsets are committed.

What identifies a request is its request id (the contract's unique id: the key of the request and of
its response, and the seed of its certificate ids), never its place in a log: offsets start at 0
again on a new cluster, and a ledger keyed by position skipped every new request that landed on an
old position. A message whose request id is in the ledger is
- at the very position recorded: the same message re-delivered after a crash (its answer is out:
  skipped);
- anywhere else: a replay (answered REPLAYED_REQUEST, recorded too, so that this refusal is not
  repeated when *it* is re-delivered). A request id is issued at most once, whatever the kiosk.
A `pending` claim is in doubt after a crash: the worker scans the output topics from the recorded
marks and produces, from the stored bytes, only what is not there yet (the archive is idempotent for
the same bytes). A claimed request is never decided or rendered twice, so its answer cannot change.
Rows older than the retention are pruned: by then the request time is far outside the freshness
window, so a replay is refused as expired anyway.

One worker process owns a ledger (one writer); it is not shared between hosts. A ledger of the
first layout (keyed by position) is migrated in place when opened.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.private_files import create_private_file

Position = tuple[str, int, int]  # request topic, partition, offset
OutputPartition = tuple[str, int]
ClaimKey = tuple[str, str, int, int]  # request id, then the position of the message answered

PENDING = "pending"
DELIVERED = "delivered"
DEFAULT_RETENTION_SECONDS = 2 * 24 * 3600
LAYOUT_VERSION = 2  # SQLite user_version: 0 is the first layout (keyed by position), migrated on open

_KEY = 'request_id, topic, partition, "offset"'
_AT_KEY = 'request_id=? AND topic=? AND partition=? AND "offset"=?'
_TABLES = f"""
    CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        status TEXT NOT NULL, state TEXT NOT NULL, claimed_at REAL NOT NULL, PRIMARY KEY ({_KEY}));
    CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state);
    CREATE TABLE IF NOT EXISTS issued (
        request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        certificate_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (certificate_id));
    CREATE INDEX IF NOT EXISTS issued_by_claim ON issued ({_KEY});
    CREATE TABLE IF NOT EXISTS outputs (
        request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        response_key BLOB NOT NULL, response BLOB NOT NULL, issued_at REAL, municipality_code TEXT,
        PRIMARY KEY ({_KEY}));
    CREATE TABLE IF NOT EXISTS fronts (
        request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        sheet INTEGER NOT NULL, png BLOB NOT NULL, PRIMARY KEY ({_KEY}, sheet));
    CREATE TABLE IF NOT EXISTS output_marks (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, PRIMARY KEY (topic, partition));
"""
# The first layout's rows, carried over with the request id of their position.
_MIGRATION = """
    DROP INDEX IF EXISTS requests_by_id;
    DROP INDEX IF EXISTS issued_by_position;
    ALTER TABLE requests RENAME TO requests_v1;
    ALTER TABLE issued RENAME TO issued_v1;
    ALTER TABLE outputs RENAME TO outputs_v1;
    ALTER TABLE fronts RENAME TO fronts_v1;
""" + _TABLES + """
    INSERT INTO requests SELECT request_id, topic, partition, "offset", status, state, claimed_at FROM requests_v1;
    INSERT INTO issued SELECT r.request_id, i.topic, i.partition, i."offset", i.certificate_id, i.key, i.value
        FROM issued_v1 i JOIN requests_v1 r USING (topic, partition, "offset");
    INSERT INTO outputs SELECT r.request_id, o.topic, o.partition, o."offset", o.response_key, o.response,
        o.issued_at, o.municipality_code FROM outputs_v1 o JOIN requests_v1 r USING (topic, partition, "offset");
    INSERT INTO fronts SELECT r.request_id, f.topic, f.partition, f."offset", f.sheet, f.png
        FROM fronts_v1 f JOIN requests_v1 r USING (topic, partition, "offset");
    DROP TABLE requests_v1; DROP TABLE issued_v1; DROP TABLE outputs_v1; DROP TABLE fronts_v1;
"""


class Seen(enum.Enum):
    """What the ledger knows of a message's request id."""

    NEW = "new"  # never answered: decide it
    REDELIVERED = "redelivered"  # this very message was answered (re-delivered after a crash): skip it
    REPLAYED = "replayed"  # the request id was answered for another message: a replay


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

    @property
    def key(self) -> ClaimKey:
        return (self.request_id, *self.position)


class RequestLedger:
    def __init__(self, path: Path, retention_seconds: float = DEFAULT_RETENTION_SECONDS) -> None:
        create_private_file(path)  # it holds the answers (PDFs) until delivered: 0600 in a 0700 folder
        self.path = path
        self.retention_seconds = retention_seconds
        self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            first_layout = (self._con.execute("PRAGMA user_version").fetchone()[0] < LAYOUT_VERSION
                            and self._con.execute("SELECT 1 FROM sqlite_master WHERE name='requests'").fetchone())
            for statement in (_MIGRATION if first_layout else _TABLES).split(";"):
                if statement.strip():
                    self._con.execute(statement)
            self._con.execute(f"PRAGMA user_version={LAYOUT_VERSION}")

    def close(self) -> None:
        self._con.close()

    # -- reading -------------------------------------------------------------------------------

    def seen(self, request_id: str, position: Position) -> Seen:
        """Whether the request id was answered, for this message or another one."""
        rows = self._con.execute('SELECT topic, partition, "offset" FROM requests WHERE request_id=?',
                                 (request_id,)).fetchall()
        if not rows:
            return Seen.NEW
        return Seen.REDELIVERED if position in rows else Seen.REPLAYED

    def pending(self) -> list[Claim]:
        rows = self._con.execute(f'SELECT {_KEY}, status FROM requests WHERE state=?', (PENDING,)).fetchall()
        claims = []
        for request_id, topic, partition, offset, status in rows:
            key = (request_id, topic, partition, offset)
            issued = self._con.execute(f'SELECT certificate_id, key, value FROM issued WHERE {_AT_KEY} '
                                       'ORDER BY certificate_id', key).fetchall()
            response_key, response, issued_at, municipality = self._con.execute(
                f'SELECT response_key, response, issued_at, municipality_code FROM outputs WHERE {_AT_KEY}',
                key).fetchone()
            fronts = [png for (png,) in self._con.execute(f'SELECT png FROM fronts WHERE {_AT_KEY} ORDER BY sheet',
                                                          key)]
            claims.append(Claim((topic, partition, offset), request_id, status, bytes(response_key), bytes(response),
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
                                  (*c.key, c.status, PENDING, now))
                self._insert_outputs(c)

    def replace(self, claim: Claim) -> None:
        """Replace a pending claim's answer (an issue the archive refused becomes a refusal): nothing of it
        was out yet."""
        with self._transaction():
            self._con.execute(f'UPDATE requests SET status=? WHERE {_AT_KEY} AND state=?',
                              (claim.status, *claim.key, PENDING))
            self._delete_outputs([claim.key])
            self._insert_outputs(claim)

    def mark_delivered(self, claims: Sequence[ClaimKey], marks: Mapping[OutputPartition, int]) -> None:
        """The batch is out; its output partitions reached at least these offsets."""
        with self._transaction():
            self._con.executemany(f'UPDATE requests SET state=? WHERE {_AT_KEY}', [(DELIVERED, *k) for k in claims])
            self._delete_outputs(claims)  # delivered messages' bytes are no longer needed for a recovery
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

    def _insert_outputs(self, c: Claim) -> None:
        self._con.executemany('INSERT INTO issued VALUES (?, ?, ?, ?, ?, ?, ?)',
                              [(*c.key, m.certificate_id, m.key, m.value) for m in c.issued])
        self._con.execute('INSERT INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                          (*c.key, c.response_key, c.response, c.issued_at, c.municipality_code))
        self._con.executemany('INSERT INTO fronts VALUES (?, ?, ?, ?, ?, ?)',
                              [(*c.key, i, png) for i, png in enumerate(c.fronts)])

    def _delete_outputs(self, claims: Sequence[ClaimKey]) -> None:
        for table in ("issued", "outputs", "fronts"):
            self._con.executemany(f"DELETE FROM {table} WHERE {_AT_KEY}", list(claims))

    class _Txn:
        def __init__(self, con: sqlite3.Connection) -> None:
            self._con = con

        def __enter__(self) -> None:
            self._con.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            self._con.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _transaction(self) -> RequestLedger._Txn:
        return RequestLedger._Txn(self._con)
