"""The card transport: how the kiosk reaches a card. The kiosk code cannot tell which one it has.

- `InProcessTransport` hands APDUs straight to a `JpkiCard` in the same process (unit and load tests).
- `PcscTransport` goes through PC/SC with pyscard: pcscd, then any reader — the vpcd virtual reader
  whose card is the virtual My Number card, or a real USB/NFC reader with a real card.
"""

from __future__ import annotations

import time
from typing import Protocol, Self

from kiosk_sim.card import JpkiCard
from kiosk_sim.errors import TransportError


class BaseCardTransport(Protocol):
    def transmit(self, apdu: bytes) -> tuple[bytes, int, int]:
        """Send one command APDU; answer (response data, SW1, SW2)."""
        ...

    def reset(self) -> None:
        """Reset the card: its session state (selection, verified PINs) is lost, its PIN counters are not."""
        ...

    def close(self) -> None:
        """Release the card (it is powered off)."""
        ...


def _split(response: bytes) -> tuple[bytes, int, int]:
    if len(response) < 2:
        raise TransportError(f"the card answered {len(response)} bytes, less than a status word")
    return response[:-2], response[-2], response[-1]


class InProcessTransport:
    """A card in this process: no PC/SC, no sockets. Powers the card on when opened."""

    def __init__(self, card: JpkiCard) -> None:
        self._card = card
        self.atr = card.power_on()

    def transmit(self, apdu: bytes) -> tuple[bytes, int, int]:
        return _split(self._card.process(apdu))

    def reset(self) -> None:
        self.atr = self._card.reset()

    def close(self) -> None:
        self._card.power_off()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PcscTransport:
    """A card in a PC/SC reader, through pcscd and pyscard."""

    def __init__(self, connection: object, reader_name: str) -> None:
        self._connection = connection
        self.reader_name = reader_name

    @classmethod
    def open(cls, reader_name: str | None = None, timeout: float = 5.0, poll_interval: float = 0.1) -> Self:
        """Connect to the card in the first reader whose name contains `reader_name` (any reader if None),
        waiting up to `timeout` seconds for pcscd to list the reader and for a card to be inserted."""
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException
        from smartcard.System import readers

        deadline = time.monotonic() + timeout
        while True:
            try:
                listed = readers()
            except BaseSCardException as exc:
                listed = []
                problem = f"pcscd is not reachable ({exc}); is the pcscd service running?"
            else:
                problem = "no PC/SC reader is listed"
                if reader_name is not None:
                    problem = f"no PC/SC reader named like {reader_name!r}"
            for reader in listed:
                if reader_name is not None and reader_name not in str(reader):
                    continue
                connection = reader.createConnection()
                try:
                    connection.connect()
                except NoCardException:
                    connection.release()
                    problem = f"no card in reader {reader}"
                    continue
                except CardConnectionException as exc:
                    connection.release()
                    problem = f"cannot connect to the card in reader {reader}: {exc}"
                    continue
                return cls(connection, str(reader))
            if time.monotonic() >= deadline:
                raise TransportError(f"{problem} (waited {timeout:g} s)")
            time.sleep(poll_interval)

    @property
    def atr(self) -> bytes:
        return bytes(self._connection.getATR())  # type: ignore[attr-defined]

    def transmit(self, apdu: bytes) -> tuple[bytes, int, int]:
        from smartcard.Exceptions import CardConnectionException

        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))  # type: ignore[attr-defined]
        except CardConnectionException as exc:
            raise TransportError(f"the card in reader {self.reader_name} did not answer: {exc}") from exc
        return bytes(data), sw1, sw2

    def reset(self) -> None:
        from smartcard.Exceptions import CardConnectionException
        from smartcard.scard import SCARD_RESET_CARD

        try:
            self._connection.reconnect(disposition=SCARD_RESET_CARD)  # type: ignore[attr-defined]
        except CardConnectionException as exc:
            raise TransportError(f"cannot reset the card in reader {self.reader_name}: {exc}") from exc

    def close(self) -> None:
        from smartcard.Exceptions import CardConnectionException

        try:
            self._connection.disconnect()  # type: ignore[attr-defined]
        except CardConnectionException as exc:
            raise TransportError(f"cannot release the card in reader {self.reader_name}: {exc}") from exc
        finally:
            self._connection.release()  # type: ignore[attr-defined]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
