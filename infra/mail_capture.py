"""An SMTP server that keeps every message it accepts as an .eml file (aiosmtpd): the mail server of the tests
and of `make demo` (var/demo/mail/), where no real mail may leave the machine.

Each message is written to `<folder>/<Message-ID>.eml` (the id's characters that cannot be in a file name
replaced), through a temporary file and a rename, before the server answers 250: a message the server accepted
is on disk whole. A second copy of a mail (the mailer resends one whose mark it lost, sinks.mail_outbox) has the
same Message-ID and replaces the first file, so the folder holds each mail once; `received` counts every copy."""

from __future__ import annotations

import os
import re
import threading
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def eml_name(message_id: str) -> str:
    """The file name of a message: its Message-ID without the angle brackets, only safe characters."""
    return _UNSAFE.sub("_", message_id.strip().strip("<>")) + ".eml"


class EmlFolderHandler:
    """The aiosmtpd handler: DATA → an .eml file named by the Message-ID (a message without one is refused)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.received: list[str] = []  # the Message-ID of every copy accepted, in order
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message_id = message_from_bytes(content, policy=policy.default).get("Message-ID")
        if not message_id:
            return "550 a message needs a Message-ID"
        target = self.folder / eml_name(str(message_id))
        temporary = target.with_name(target.name + ".tmp")
        with open(temporary, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(target)
        with self._lock:
            self.received.append(str(message_id))
        return "250 Message accepted for delivery"


class MailCapture:
    """The capture server on 127.0.0.1:`port` (0: a free port) in a thread; `with MailCapture(folder) as c:`."""

    def __init__(self, folder: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.handler = EmlFolderHandler(folder)
        self._controller = Controller(self.handler, hostname=host, port=port or _free_port(host))

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> MailCapture:
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving (again: nothing)."""
        self._controller.stop(no_assert=True)

    def __enter__(self) -> MailCapture:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
