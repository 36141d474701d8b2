"""Errors of the kiosk simulator: the card, its transports and the kiosk-side card client.

Messages are written for the person at the kiosk or the operator: they say what happened and what to do.
"""

from __future__ import annotations

from domain.errors import BclError


class KioskSimError(BclError):
    """Root of the kiosk simulator's errors."""


class CardNotPoweredError(KioskSimError):
    """An APDU reached the virtual card while it was powered off (a transport bug, never a user error)."""


class TransportError(KioskSimError):
    """The reader or the link to the card failed: no reader, no card, the card was removed."""


class CardError(KioskSimError):
    """The card answered a command with an unexpected status word."""

    def __init__(self, operation: str, sw1: int, sw2: int) -> None:
        self.operation = operation
        self.sw = (sw1 << 8) | sw2
        super().__init__(f"the card refused to {operation} (status {self.sw:04X})")


class WrongPin(KioskSimError):
    """The PIN was wrong; the card still accepts `tries_left` attempts."""

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(
            f"wrong PIN: {tries_left} {'try' if tries_left == 1 else 'tries'} left before the card locks"
        )


class PinLocked(KioskSimError):
    """The PIN is blocked after too many wrong entries; only the municipal office can reset it."""

    def __init__(self) -> None:
        super().__init__(
            "the card's PIN is locked after too many wrong entries; "
            "please have it reset at your municipal office (市区町村の窓口で暗証番号の再設定をしてください)"
        )


class InvalidPinFormat(KioskSimError):
    """The entered value cannot be the PIN (e.g. not 4 digits); it was not sent, so no try was used."""


class PinNotVerifiedError(KioskSimError):
    """A protected operation was attempted before the PIN was verified."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"cannot {operation}: the PIN has not been verified in this session")


class CardDataError(KioskSimError):
    """Data read from the card is malformed (not a certificate, a bad TLV record)."""


class CardConfigError(KioskSimError):
    """The virtual card cannot be built from what it was given (bad PIN format, unreadable key)."""
