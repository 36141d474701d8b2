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
- at the very position recorded, on the same cluster, with the same broker timestamp: the same message
  re-delivered after a crash (its answer is out: skipped). The position alone is not enough: a new
  cluster puts a replay at its old offset as easily as any other request, so each claim also keeps
  the message's origin, the cluster id and the message's timestamp (the embedded cluster's id is made
  from two heap addresses, which need not differ between two runs of a process);
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
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from infra.sqlite_database import immediate_transaction, open_database

Position = tuple[str, int, int]  # request topic, partition, offset
OutputPartition = tuple[str, int]
ClaimKey = tuple[str, str, int, int, str]  # request id, the position of the message answered, its origin

PENDING = "pending"
DELIVERED = "delivered"
DEFAULT_RETENTION_SECONDS = 2 * 24 * 3600
# SQLite user_version: 0 is the first layout (keyed by position), 2 the one without origins; both are migrated
# on open. Their rows' origin is unknown, '': such a row is matched on its position alone, as it was written.
LAYOUT_VERSION = 3

_KEY = 'request_id, topic, partition, "offset", origin'
_AT_KEY = 'request_id=? AND topic=? AND partition=? AND "offset"=? AND origin=?'
_KEY_COLUMNS = """request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, origin TEXT NOT NULL"""
_TABLES = f"""
    CREATE TABLE IF NOT EXISTS requests (
        {_KEY_COLUMNS}, status TEXT NOT NULL, state TEXT NOT NULL, claimed_at REAL NOT NULL, PRIMARY KEY ({_KEY}));
    CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state);
    CREATE TABLE IF NOT EXISTS issued (
        {_KEY_COLUMNS}, certificate_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (certificate_id));
    CREATE INDEX IF NOT EXISTS issued_by_claim ON issued ({_KEY});
    CREATE TABLE IF NOT EXISTS outputs (
        {_KEY_COLUMNS}, response_key BLOB NOT NULL, response BLOB NOT NULL, issued_at REAL, municipality_code TEXT,
        PRIMARY KEY ({_KEY}));
    CREATE TABLE IF NOT EXISTS fronts (
        {_KEY_COLUMNS}, sheet INTEGER NOT NULL, png BLOB NOT NULL, PRIMARY KEY ({_KEY}, sheet));
    CREATE TABLE IF NOT EXISTS output_marks (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, PRIMARY KEY (topic, partition));
"""
_COLUMNS = {"requests": "status, state, claimed_at", "issued": "certificate_id, key, value",
            "outputs": "response_key, response, issued_at, municipality_code", "fronts": "sheet, png"}


def _migration(version: int) -> str:
    """The script that carries an older layout's rows over, with origin ''. The first layout had no request id
    but in `requests`: the other tables take it from there, by position."""
    script = "DROP INDEX IF EXISTS requests_by_id; DROP INDEX IF EXISTS issued_by_position; DROP INDEX IF EXISTS " \
             "issued_by_claim; DROP INDEX IF EXISTS requests_by_state;"
    script += "".join(f"ALTER TABLE {t} RENAME TO {t}_old;" for t in _COLUMNS) + _TABLES
    for table, columns in _COLUMNS.items():
        values = ", ".join(f"o.{c.strip()}" for c in columns.split(","))
        request_id, joined = ("r.request_id", 'JOIN requests_old r USING (topic, partition, "offset")') \
            if version == 0 and table != "requests" else ("o.request_id", "")
        script += (f'INSERT INTO {table} (request_id, topic, partition, "offset", origin, {columns}) '
                   f"""SELECT {request_id}, o.topic, o.partition, o."offset", '', {values} """
                   f"FROM {table}_old o {joined};")
    return script + "".join(f"DROP TABLE {t}_old;" for t in _COLUMNS)


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
    origin: str = ""  # the cluster and broker timestamp of the message answered (origin_of); '' unknown

    @property
    def key(self) -> ClaimKey:
        return (self.request_id, *self.position, self.origin)


def origin_of(cluster_id: str | None, timestamp_ms: int) -> str:
    """What, besides its position, tells one message from another at the same offset of another cluster."""
    return f"{(cluster_id or '').replace(':', '_')}@{timestamp_ms}"  # no colon: it is a field of a header


class RequestLedger:
    def __init__(self, path: Path, retention_seconds: float = DEFAULT_RETENTION_SECONDS) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self._con = open_database(path)  # it holds the answers (PDFs) until delivered: private
        with self._transaction():
            version = self._con.execute("PRAGMA user_version").fetchone()[0]
            exists = self._con.execute("SELECT 1 FROM sqlite_master WHERE name='requests'").fetchone()
            script = _TABLES if not exists else _migration(version) if version < LAYOUT_VERSION else ""
            for statement in script.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            self._con.execute(f"PRAGMA user_version={LAYOUT_VERSION}")

    def close(self) -> None:
        self._con.close()

    # -- reading -------------------------------------------------------------------------------

    def seen(self, request_id: str, position: Position, origin: str) -> Seen:
        """Whether the request id was answered, for this very message (position and origin) or another one."""
        rows = self._con.execute('SELECT topic, partition, "offset", origin FROM requests WHERE request_id=?',
                                 (request_id,)).fetchall()
        if not rows:
            return Seen.NEW
        same = any((t, p, o) == position and recorded in (origin, "") for t, p, o, recorded in rows)
        return Seen.REDELIVERED if same else Seen.REPLAYED

    def pending(self) -> list[Claim]:
        rows = self._con.execute(f'SELECT {_KEY}, status FROM requests WHERE state=?', (PENDING,)).fetchall()
        claims = []
        for request_id, topic, partition, offset, origin, status in rows:
            key = (request_id, topic, partition, offset, origin)
            issued = self._con.execute(f'SELECT certificate_id, key, value FROM issued WHERE {_AT_KEY} '
                                       'ORDER BY certificate_id', key).fetchall()
            response_key, response, issued_at, municipality = self._con.execute(
                f'SELECT response_key, response, issued_at, municipality_code FROM outputs WHERE {_AT_KEY}',
                key).fetchone()
            fronts = [png for (png,) in self._con.execute(f'SELECT png FROM fronts WHERE {_AT_KEY} ORDER BY sheet',
                                                          key)]
            claims.append(Claim((topic, partition, offset), request_id, status, bytes(response_key), bytes(response),
                                tuple(IssuedMessage(c, bytes(k), bytes(v)) for c, k, v in issued), issued_at,
                                municipality, tuple(bytes(f) for f in fronts), origin))
        return claims

    def output_marks(self) -> dict[OutputPartition, int]:
        return {(t, p): o for t, p, o in self._con.execute('SELECT topic, partition, "offset" FROM output_marks')}

    # -- writing (each call is one SQLite transaction) -----------------------------------------

    def claim(self, claims: Iterable[Claim]) -> None:
        now = time.time()
        with self._transaction():
            for c in claims:
                self._con.execute('INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
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
        self._con.executemany('INSERT INTO issued VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                              [(*c.key, m.certificate_id, m.key, m.value) for m in c.issued])
        self._con.execute('INSERT INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                          (*c.key, c.response_key, c.response, c.issued_at, c.municipality_code))
        self._con.executemany('INSERT INTO fronts VALUES (?, ?, ?, ?, ?, ?, ?)',
                              [(*c.key, i, png) for i, png in enumerate(c.fronts)])

    def _delete_outputs(self, claims: Sequence[ClaimKey]) -> None:
        for table in ("issued", "outputs", "fronts"):
            self._con.executemany(f"DELETE FROM {table} WHERE {_AT_KEY}", list(claims))

    def _transaction(self) -> AbstractContextManager[None]:
        return immediate_transaction(self._con)
