"""Command APDUs in the ISO/IEC 7816-4 short form: encoding (kiosk side) and decoding (card side).

The My Number card's JPKI and card-info applications use short APDUs only (Lc and Le of one byte,
Le = 00 meaning 256), so the extended form (Lc = 00 followed by two length bytes) is rejected as a
wrong length. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# Status words (SW1 SW2) this project's card and client use.
SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_FILE_INCOMPATIBLE = 0x6981  # the current EF is a PIN or key, it cannot be read
SW_SECURITY_NOT_SATISFIED = 0x6982  # the PIN protecting the file or key was not verified
SW_PIN_BLOCKED = 0x6984  # the PIN is blocked (JPKI cards; some readers expect 6983)
SW_NO_CURRENT_EF = 0x6986  # the command needs a current EF of another kind (none, or not a PIN / key)
SW_WRONG_DATA = 0x6A80  # the data field is malformed (bad DigestInfo, bad new PIN)
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_OFFSET_BEYOND_FILE = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_WRONG_PIN_BASE = 0x63C0  # 63Cx: wrong PIN, x tries left

MAX_SHORT_LE = 256


# Deliberately outside the BclError hierarchy: an internal protocol signal between the APDU decoder and
# the virtual card, which always catches it and answers status word 6700 (wrong length), as a real card
# does. It never reaches an operator or the command line, so it has no message to map there.
class MalformedApdu(ValueError):
    """The bytes are not a short command APDU (the card answers 6700)."""


@dataclass(frozen=True, slots=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # expected response length, 1..256; None when the command expects no data

    def to_bytes(self) -> bytes:
        if not all(0 <= b <= 0xFF for b in (self.cla, self.ins, self.p1, self.p2)):
            raise ValueError("CLA, INS, P1 and P2 are single bytes")
        if len(self.data) > 255:
            raise ValueError(f"short APDUs carry at most 255 data bytes, got {len(self.data)}")
        if self.le is not None and not 1 <= self.le <= MAX_SHORT_LE:
            raise ValueError(f"Le must be 1..256, got {self.le}")
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))  # 256 is encoded as 00
        return out

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Decode the four ISO cases of a short APDU; raise MalformedApdu otherwise."""
        if len(raw) < 4:
            raise MalformedApdu(f"an APDU has at least 4 header bytes, got {len(raw)}")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:  # case 1
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2
            return cls(cla, ins, p1, p2, le=body[0] or MAX_SHORT_LE)
        lc = body[0]
        if lc == 0:
            raise MalformedApdu("extended-length APDUs are not supported")
        if len(body) == 1 + lc:  # case 3
            return cls(cla, ins, p1, p2, data=bytes(body[1:]))
        if len(body) == 2 + lc:  # case 4
            return cls(cla, ins, p1, p2, data=bytes(body[1:-1]), le=body[-1] or MAX_SHORT_LE)
        raise MalformedApdu(f"Lc = {lc} does not match the {len(body) - 1} bytes that follow it")


def status_bytes(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
