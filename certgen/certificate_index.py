"""The PKI's index of issued certificates and revocations, in SQLite.

Why SQLite rather than a JSON file: the index grows to one row per virtual card (hundreds of
thousands in load runs), a JSON file would be rewritten whole on every issue; the OCSP responder
reads it from several threads while `bcl pki issue-card` / `revoke` write from another process,
which SQLite's WAL mode handles with proper locking; and a status lookup is one indexed query.
It ships with Python, so no new dependency.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgen.errors import DuplicateSerialError
from certgen.revocation import Revocation, RevocationStatus, SerialStatus, merge_revocation
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import RevocationReason
from domain.certificate_serial import format_serial
from infra.private_files import create_private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (
    serial TEXT PRIMARY KEY,            -- 16 lower-case hex digits
    kind TEXT NOT NULL,                 -- CARD or SMARTPHONE
    subject_cn TEXT NOT NULL,           -- the opaque subject id
    not_before TEXT NOT NULL,           -- ISO 8601 UTC
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    der BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    serial TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    municipality_code TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    kind: CertificateKind
    subject_cn: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    der: bytes

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class CertificateIndex:
    """Issued certificates and revocations of one PKI; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        create_private_file(path)
        with self._connection() as connection:
            connection.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def record_issued(self, certificate: x509.Certificate, kind: CertificateKind, issued_at: datetime) -> None:
        serial = format_serial(certificate.serial_number)
        subject_cn = str(certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)
        try:
            self._connection().execute(
                "INSERT INTO issued VALUES (?, ?, ?, ?, ?, ?, ?)",
                (serial, CertificateKind(kind).value, subject_cn, _iso(certificate.not_valid_before_utc),
                 _iso(certificate.not_valid_after_utc), _iso(issued_at),
                 certificate.public_bytes(serialization.Encoding.DER)))
        except sqlite3.IntegrityError as exc:
            raise DuplicateSerialError(f"a certificate with serial {serial} was already issued") from exc

    def get(self, serial: str) -> IssuedCertificate | None:
        row = self._connection().execute(
            "SELECT serial, kind, subject_cn, not_before, not_after, issued_at, der FROM issued WHERE serial = ?",
            (serial,)).fetchone()
        if row is None:
            return None
        return IssuedCertificate(row[0], CertificateKind(row[1]), row[2], _from_iso(row[3]), _from_iso(row[4]),
                                 _from_iso(row[5]), bytes(row[6]))

    def revocation(self, serial: str) -> Revocation | None:
        row = self._connection().execute(
            "SELECT serial, reason, revoked_at, municipality_code FROM revocations WHERE serial = ?",
            (serial,)).fetchone()
        return None if row is None else _revocation(row)

    def record_revocation(self, revocation: Revocation) -> Revocation:
        """Store a revocation (earliest one per serial wins) and return the one that stands."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            merged = merge_revocation(self.revocation(revocation.serial), revocation)
            connection.execute(
                "INSERT OR REPLACE INTO revocations VALUES (?, ?, ?, ?)",
                (merged.serial, merged.reason.value, _iso(merged.revoked_at), merged.municipality_code))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return merged

    def status_of(self, serial: int) -> SerialStatus:
        """GOOD / REVOKED / UNKNOWN for an integer serial (the OCSP responder's lookup)."""
        serial_hex = format_serial(serial)
        if self._connection().execute("SELECT 1 FROM issued WHERE serial = ?", (serial_hex,)).fetchone() is None:
            return SerialStatus(RevocationStatus.UNKNOWN)
        revocation = self.revocation(serial_hex)
        if revocation is None:
            return SerialStatus(RevocationStatus.GOOD)
        return SerialStatus(RevocationStatus.REVOKED, revocation)

    def revocations(self) -> Iterator[Revocation]:
        rows = self._connection().execute(
            "SELECT serial, reason, revoked_at, municipality_code FROM revocations ORDER BY serial").fetchall()
        return (_revocation(row) for row in rows)

    def issued_count(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM issued").fetchone()[0])

    def next_counter(self, name: str) -> int:
        """Atomically increment and return a named counter (from 1), e.g. the CRL number."""
        row = self._connection().execute(
            "INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            (name,)).fetchone()
        return int(row[0])


def _revocation(row: tuple[str, str, str, str | None]) -> Revocation:
    return Revocation(serial=row[0], reason=RevocationReason(row[1]), revoked_at=_from_iso(row[2]),
                      municipality_code=row[3])
