"""A shelter terminal (docs/domain.md §6.6): reads who arrives or leaves, keeps each check-in and check-out in its
own durable queue (SQLite, WAL, synchronous=FULL), and hands the queue to the shelter intake when it is online.

Why a local queue: after a large earthquake a shelter's network is down for hours, and the people arriving cannot
wait. So an event is made, and kept, on the terminal: its id (a UUID), the terminal's id and the terminal's own
sequence number are chosen here, once, and never change; `pending` gives the events the intake has not answered,
oldest first, and `answer` records the intake's receipts. A terminal killed between the intake's commit and
`answer` sends those events again, and the intake, which keys events by their id, takes each once.

The card: the kiosk's card stack (kiosk_sim.card_client through pcscd). The terminal reads the authentication
certificate, verifies the PIN the resident types and has the card sign the event's id: a copied certificate
without its card cannot check anyone in. The intake finds the person by the certificate's serial; no certificate
is issued.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.certificate_serial import format_serial
from domain.disasters import to_millisecond
from domain.kiosk_rules import Refusal
from domain.request_authentication import parse_certificate, verify_challenge_signature
from domain.shelter_stays import Receipt, StayAction, StayError, StayEvent, TerminalEvent, TokenKind
from infra.sqlite_database import immediate_transaction, open_database

_TABLES = """
    CREATE TABLE IF NOT EXISTS terminal (
        one INTEGER PRIMARY KEY CHECK (one = 1), terminal_id TEXT NOT NULL, disaster_id TEXT NOT NULL,
        shelter_id TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS events (
        sequence INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, action TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, token_kind TEXT NOT NULL, token TEXT NOT NULL, answered_at INTEGER,
        status TEXT, detail TEXT);
    CREATE INDEX IF NOT EXISTS events_pending ON events (sequence) WHERE answered_at IS NULL;
"""


class TerminalError(StayError):
    """The terminal's queue is missing or was made for something else."""


@dataclass(frozen=True)
class TerminalIdentity:
    terminal_id: str
    disaster_id: str
    shelter_id: str


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def read_card(pin: str, reader: str | None) -> dict[str, str]:
    """The card's token: its authentication certificate (base64 DER, checked by the intake) and serial, once the
    card proved it holds the certificate's key (PIN verified, a fresh challenge signed). WrongPin or PinLocked
    from the card end here."""
    from kiosk_sim.card_client import JpkiCardClient
    from kiosk_sim.transport import PcscTransport

    challenge = f"BCL-SHELTER-CHECK-v1 {uuid.uuid4()}".encode()
    with PcscTransport.open(reader, timeout=5) as transport:
        proof = JpkiCardClient(transport).authenticate(pin, challenge)
    certificate = parse_certificate(proof.certificate_der)
    if isinstance(certificate, Refusal):
        raise StayError(f"the card's authentication certificate cannot be read: {certificate.detail}")
    refused = verify_challenge_signature(certificate, challenge, proof.signature)
    if refused is not None:
        raise StayError(f"the card did not prove it holds its certificate: {refused.detail or refused.message}")
    return {"serial": format_serial(certificate.serial_number),
            "certificate": base64.b64encode(proof.certificate_der).decode()}


class TerminalQueue:
    """The terminal's local queue of events."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise TerminalError(f"no terminal queue at {path} (`bcl shelter terminal init` makes one)")
        self.path = path
        self._con = open_database(path)
        try:
            row = self._con.execute("SELECT terminal_id, disaster_id, shelter_id FROM terminal").fetchone()
        except sqlite3.DatabaseError:  # another SQLite file, or no SQLite file at all
            row = None
        if row is None:
            self._con.close()
            raise TerminalError(f"{path} is not a terminal queue (`bcl shelter terminal init` makes one)")
        self.identity = TerminalIdentity(*row)

    @classmethod
    def create(cls, path: Path, disaster_id: str, shelter_id: str, terminal_id: str | None,
               now: dt.datetime) -> TerminalQueue:
        """A new queue for a terminal of a shelter opened for a disaster (refused if the file is one already)."""
        if path.exists():
            raise TerminalError(f"{path} exists already: a terminal keeps its queue (and its event numbers)")
        path.parent.mkdir(parents=True, exist_ok=True)
        con = open_database(path)
        try:
            with immediate_transaction(con):
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute("INSERT INTO terminal VALUES (1, ?, ?, ?, ?)",
                            (terminal_id or f"T-{uuid.uuid4().hex[:12]}", disaster_id, shelter_id, _ms(now)))
        finally:
            con.close()
        return cls(path)

    def close(self) -> None:
        self._con.close()

    def record(self, action: StayAction, token_kind: TokenKind, token: Mapping[str, str],
               now: dt.datetime) -> TerminalEvent:
        """Keep a new event (durable when this returns): its id and its number on this terminal made here."""
        event_id = str(uuid.uuid4())
        with immediate_transaction(self._con):
            cursor = self._con.execute(
                "INSERT INTO events (event_id, action, occurred_at, token_kind, token) VALUES (?, ?, ?, ?, ?)",
                (event_id, action.value, _ms(now), token_kind.value, json.dumps(dict(token), ensure_ascii=False)))
            sequence = cursor.lastrowid
        assert sequence is not None
        return self._event((sequence, event_id, action.value, _ms(now), token_kind.value, json.dumps(dict(token))))

    def pending(self, limit: int = 500) -> list[TerminalEvent]:
        """The events the intake has not answered, oldest first."""
        return [self._event(row) for row in self._con.execute(
            "SELECT sequence, event_id, action, occurred_at, token_kind, token FROM events WHERE answered_at IS NULL "
            "ORDER BY sequence LIMIT ?", (limit,))]

    def answer(self, receipts: Sequence[Receipt], now: dt.datetime) -> None:
        with immediate_transaction(self._con):
            self._con.executemany("UPDATE events SET answered_at=?, status=?, detail=? WHERE event_id=?",
                                  [(_ms(now), r.status.value, r.detail, r.event_id) for r in receipts])

    def status(self, event_id: str) -> tuple[str | None, str | None]:
        """The intake's answer for an event (status, detail), or (None, None) while it waits."""
        row = self._con.execute("SELECT status, detail FROM events WHERE event_id=?", (event_id,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def counts(self) -> dict[str, int]:
        answered, waiting = self._con.execute(
            "SELECT count(answered_at), count(*) - count(answered_at) FROM events").fetchone()
        return {"answered": answered, "waiting": waiting}

    def _event(self, row: tuple[int, str, str, int, str, str] | sqlite3.Row) -> TerminalEvent:
        sequence, event_id, action, occurred_at, kind, token = row
        identity = self.identity
        return TerminalEvent(
            StayEvent(event_id, StayAction(action), identity.shelter_id,
                      dt.datetime.fromtimestamp(occurred_at / 1000, dt.UTC), identity.terminal_id, sequence),
            identity.disaster_id, TokenKind(kind), json.loads(token))
