"""The vpcd link: serves a `JpkiCard` to pcscd's vsmartcard `vpcd` reader driver over TCP.

The reader driver (inside pcscd) listens; the virtual card connects to it (127.0.0.1:35963 is the
first vpcd reader of Debian's /etc/reader.conf.d/vpcd, 35964 the second). Each message is a 2-byte
big-endian length then the payload. A 1-byte payload is a control code from the reader (00 power off,
01 power on, 02 reset, 04 send the ATR — only the last is answered); a longer payload is a command APDU,
answered by the response APDU. While the card is connected, pcscd shows it as inserted in the reader.

Logs carry the instruction byte and the status word only: APDU data may hold a PIN.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import structlog

from kiosk_sim.card import ATR, JpkiCard
from kiosk_sim.errors import TransportError

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

_LENGTH = struct.Struct(">H")
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only

log = structlog.get_logger(__name__)


class VpcdCardServer:
    """One virtual card plugged into one vpcd reader slot."""

    def __init__(self, card: JpkiCard, host: str = VPCD_HOST, port: int = VPCD_PORT) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self.apdu_count = 0

    def connect(self, timeout: float = 10.0, retry_interval: float = 0.1) -> None:
        """Insert the card: connect to the reader driver, retrying until pcscd has loaded it."""
        deadline = time.monotonic() + timeout
        while True:
            if self._closing.is_set():
                raise TransportError("the virtual card was removed (closed) and cannot be inserted again")
            try:
                sock = socket.create_connection((self.host, self.port), timeout=retry_interval * 10)
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise TransportError(
                        f"no vpcd reader listens on {self.host}:{self.port} ({exc.strerror or exc}); "
                        "is pcscd running with the vsmartcard-vpcd driver?"
                    ) from exc
                time.sleep(retry_interval)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            log.info("card inserted into vpcd reader", host=self.host, port=self.port)
            return

    def serve(self) -> None:
        """Answer the reader until it closes the link or `close` is called (the card is then removed)."""
        sock = self._sock
        if sock is None:
            raise TransportError("the virtual card is not connected to a vpcd reader")
        try:
            while True:
                message = self._receive(sock)
                if message is None:
                    break
                reply = self._answer(message)
                if reply is not None:
                    sock.sendall(_LENGTH.pack(len(reply)) + reply)
        except OSError as exc:
            if not self._closing.is_set():
                raise TransportError(f"the vpcd link to {self.host}:{self.port} broke: {exc}") from exc
        finally:
            self.card.power_off()
            self._sock = None
            sock.close()
            log.info("card removed from vpcd reader", host=self.host, port=self.port)

    def close(self) -> None:
        """Remove the card for good: ends `serve` (from another thread or a signal handler) and `connect`."""
        self._closing.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the reader
                sock.shutdown(socket.SHUT_RDWR)

    def start(self, connect_timeout: float = 10.0) -> threading.Thread:
        """Connect, then serve in a daemon thread (tests, and the CLI's foreground mode uses `serve`)."""
        self.connect(timeout=connect_timeout)
        thread = threading.Thread(target=self.serve, name=f"vpcd-card-{self.port}", daemon=True)
        thread.start()
        return thread

    def _answer(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            code = message[0]
            if code == CTRL_ATR:
                return ATR  # vpcd also polls the ATR to see the card is present: no state change
            if code == CTRL_POWER_ON:
                self.card.power_on()
            elif code == CTRL_RESET:
                self.card.reset()
            elif code == CTRL_POWER_OFF:
                self.card.power_off()
            else:
                log.warning("unknown vpcd control code", code=code)
            return None
        if not self.card.powered:  # pcscd powers the card before sending APDUs; be tolerant anyway
            self.card.power_on()
        response = self.card.process(message)
        self.apdu_count += 1
        log.debug("apdu", ins=f"{message[1]:02X}" if len(message) > 1 else None, sw=response[-2:].hex().upper())
        return response

    @staticmethod
    def _receive(sock: socket.socket) -> bytes | None:
        # vpcd writes the length and the payload in two writes without TCP_NODELAY: Nagle holds the payload
        # until the length is acknowledged, and a delayed ACK here would cost ~40 ms per APDU. Linux resets
        # TCP_QUICKACK after use, so it is set again before every message.
        if _QUICKACK is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        header = _read_exactly(sock, _LENGTH.size)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        payload = _read_exactly(sock, length)
        if payload is None:
            raise TransportError("the vpcd reader closed the link in the middle of a message")
        return payload


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    """`size` bytes, or None if the peer closed the link before the first byte."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            if chunks:
                raise TransportError("the vpcd reader closed the link in the middle of a message")
            return None
        chunks += chunk
    return bytes(chunks)


@contextlib.contextmanager
def inserted(card: JpkiCard, port: int = VPCD_PORT) -> Iterator[VpcdCardServer]:
    """The card in the vpcd reader of `port` for the block (pcscd sees it inserted, then removed)."""
    server = VpcdCardServer(card, port=port)
    thread = server.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=5)
