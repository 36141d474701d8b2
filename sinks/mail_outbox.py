"""The mail outbox of disaster support (docs/domain.md §6.3), in the disaster store's database: the mails that
changes cause, written in the transaction of the change (sinks.disaster_applications), sent by the mailer
(streams.disaster_mailer).

A mail is one row with its own id; its Message-ID is derived from that id (`message_id`), so every copy of a mail
carries the same Message-ID. The mailer marks a row sent only after the SMTP server accepted the message (250 after
DATA). A crash between the two sends the mail again, with the same Message-ID: delivery is at least once, and the
copy is recognisable (docs/operations.md, "Mails"); never zero times for a committed change.
The rows hold personal data (an applicant's address, the reason of a rejection): the file is 0600 (the store).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from domain.disasters import to_millisecond
from sinks.disaster_store import DisasterStore

MESSAGE_ID_DOMAIN = "mail.bcl.invalid"  # no real domain: the ids are the platform's own

_TABLES = """
    CREATE TABLE IF NOT EXISTS mail_outbox (
        mail_id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_id TEXT NOT NULL, recipient TEXT NOT NULL,
        subject TEXT NOT NULL, body TEXT NOT NULL, queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, sent_at INTEGER);
    CREATE INDEX IF NOT EXISTS mail_outbox_unsent ON mail_outbox (queued_at) WHERE sent_at IS NULL;
"""


@dataclass(frozen=True)
class OutgoingMail:
    """A mail to queue: what kind, about what (the application id), to whom, subject and plain-text body."""

    kind: str
    subject_id: str
    recipient: str
    subject: str
    body: str


@dataclass(frozen=True)
class QueuedMail:
    mail_id: str
    kind: str
    subject_id: str
    recipient: str
    subject: str
    body: str
    queued_at: dt.datetime
    attempts: int
    sent_at: dt.datetime | None

    @property
    def message_id(self) -> str:
        return message_id(self.mail_id)


def message_id(mail_id: str) -> str:
    """The Message-ID header of the mail of that id: the same in every copy."""
    return f"<{mail_id}@{MESSAGE_ID_DOMAIN}>"


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class MailOutbox:
    def __init__(self, store: DisasterStore) -> None:
        self.store = store
        self._con = store.connection
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    def queue(self, mail: OutgoingMail, now: dt.datetime) -> str:
        """Queue a mail, inside the caller's transaction (the change that causes it); its id."""
        mail_id = str(uuid.uuid4())
        self._con.execute("INSERT INTO mail_outbox (mail_id, kind, subject_id, recipient, subject, body, queued_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (mail_id, mail.kind, mail.subject_id, mail.recipient, mail.subject, mail.body, _ms(now)))
        return mail_id

    def unsent(self, limit: int = 100) -> list[QueuedMail]:
        """The oldest mails not marked sent."""
        return self._select("WHERE sent_at IS NULL ORDER BY queued_at, rowid LIMIT ?", (limit,))

    def mails(self, subject_id: str | None = None) -> list[QueuedMail]:
        """Every mail (of one application), oldest first."""
        if subject_id is None:
            return self._select("ORDER BY queued_at, rowid", ())
        return self._select("WHERE subject_id=? ORDER BY queued_at, rowid", (subject_id,))

    def mark_sent(self, mail_id: str, now: dt.datetime) -> None:
        with self.store.transaction():
            self._con.execute("UPDATE mail_outbox SET sent_at=?, attempts=attempts+1, last_error=NULL "
                              "WHERE mail_id=? AND sent_at IS NULL", (_ms(now), mail_id))

    def mark_failed(self, mail_id: str, error: str) -> None:
        """The SMTP server refused or could not be reached: kept unsent, retried by the next round."""
        with self.store.transaction():
            self._con.execute("UPDATE mail_outbox SET attempts=attempts+1, last_error=? WHERE mail_id=?",
                              (error[:500], mail_id))

    def _select(self, where: str, values: tuple[object, ...]) -> list[QueuedMail]:
        rows = self._con.execute("SELECT mail_id, kind, subject_id, recipient, subject, body, queued_at, attempts, "
                                 f"sent_at FROM mail_outbox {where}", values).fetchall()
        result = []
        for mail_id, kind, subject_id, recipient, subject, body, queued_at, attempts, sent_at in rows:
            queued = _instant(queued_at)
            assert queued is not None
            result.append(QueuedMail(mail_id, kind, subject_id, recipient, subject, body, queued, attempts,
                                     _instant(sent_at)))
        return result
