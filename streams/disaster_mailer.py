"""The mailer of disaster support (`bcl disaster mailer`): sends the mail outbox (sinks.mail_outbox) through the
SMTP server of the settings, each mail once per committed change — at least once, see below.

Each round first queues the "ready to issue" mails that surveys made due (sinks.disaster_applications
.announce_ready: a survey is entered by damage assessment, which does not know the applications), then sends the
unsent mails oldest first: one SMTP transaction per mail, the Message-ID derived from the mail's id, and the mark
"sent" only after the server answered 250 to DATA. Which side of at-least-once: a crash (SIGKILL) after the 250
and before the mark sends that mail again after a restart, with the same Message-ID; a crash before the 250 sends
it for the first time. No mail of a committed change is ever lost; at most the one mail in flight can be sent
twice, and its copy carries the same Message-ID, by which the receiving side (MUAs, list servers, our capture
server infra.mail_capture, which keeps one .eml per Message-ID) drops it. Avoiding even that copy would need the
SMTP server to take part in our transaction, which SMTP cannot do.

An SMTP server that refuses a mail (5xx) or cannot be reached leaves it unsent with the error, retried next round.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime

import structlog

from infra.crash_points import crash_point
from sinks.disaster_applications import DisasterApplications
from sinks.mail_outbox import MailOutbox, QueuedMail

log = structlog.get_logger("disaster_mailer")

SMTP_TIMEOUT_SECONDS = 30.0


def email_message(mail: QueuedMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.queued_at)
    message["Message-ID"] = mail.message_id
    message.set_content(mail.body, charset="utf-8")
    return message


class DisasterMailer:
    def __init__(self, applications: DisasterApplications, outbox: MailOutbox, *, smtp_host: str, smtp_port: int,
                 sender: str, clock: Callable[[], dt.datetime]) -> None:
        self._applications = applications
        self._outbox = outbox
        self._host = smtp_host
        self._port = smtp_port
        self._sender = sender
        self._clock = clock

    def run_once(self, limit: int = 100) -> int:
        """One round: queue the mails that became due, send what is unsent; how many were sent."""
        self._applications.announce_ready(self._clock())
        sent = 0
        for mail in self._outbox.unsent(limit):
            try:
                with smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
                    smtp.send_message(email_message(mail, self._sender))
            except (OSError, smtplib.SMTPException) as exc:
                # The address is personal data: only the mail's id in the log.
                log.warning("mail_not_sent", mail_id=mail.mail_id, kind=mail.kind, error=type(exc).__name__)
                self._outbox.mark_failed(mail.mail_id, f"{type(exc).__name__}: {exc}")
                continue
            crash_point("mailer.after_accept", mail.mail_id)  # the server has it, the mark is not written yet
            self._outbox.mark_sent(mail.mail_id, self._clock())
            log.info("mail_sent", mail_id=mail.mail_id, kind=mail.kind)
            sent += 1
        return sent

    def run(self, stop: threading.Event, interval_seconds: float = 2.0) -> None:
        while not stop.is_set():
            self.run_once()
            stop.wait(interval_seconds)
