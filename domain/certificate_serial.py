"""The one format of a JPKI certificate serial, in and out (docs/domain.md §4). Pure: no I/O.

The register assigns each user-authentication certificate its serial and links it to the person
(Resident.jpki_certificates.serial); the PKI index, the CRL listing, the kiosk's authentication and
every message name a serial in that same form: 16 lower-case hexadecimal digits, leading zeros kept
(`000000000000abcd`). A serial a person types (CLI) may be in either case; `read_serial` turns it into
that form at the boundary, so only the one form is ever stored or compared.
"""

from __future__ import annotations

import re

from domain.errors import InvalidSerialError

SERIAL_HEX_DIGITS = 16
_SERIAL = re.compile(rf"[0-9a-f]{{{SERIAL_HEX_DIGITS}}}")


def format_serial(serial: int) -> str:
    """The register form of an integer serial; serials from outside the register's range are still
    shown as hex (at least 16 digits) so that messages can name them."""
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"


def parse_serial(serial_hex: str) -> int:
    """The integer serial of a register serial (exactly the register form, not zero)."""
    if not isinstance(serial_hex, str) or not _SERIAL.fullmatch(serial_hex):
        raise InvalidSerialError(f"a JPKI serial is {SERIAL_HEX_DIGITS} lower-case hex digits, got {serial_hex!r}")
    value = int(serial_hex, 16)
    if value == 0:
        raise InvalidSerialError("a certificate serial must be positive (RFC 5280 §4.1.2.2), got all zeros")
    return value


def read_serial(text: str) -> str:
    """A serial a person wrote (any case, surrounding blanks) in the register form; InvalidSerialError if it
    is not 16 hex digits. Case is safe to ignore: hex digits name the same number in either case."""
    candidate = text.strip().lower() if isinstance(text, str) else ""
    if not _SERIAL.fullmatch(candidate):
        raise InvalidSerialError(f"a JPKI serial is {SERIAL_HEX_DIGITS} hexadecimal digits, got {text!r}")
    parse_serial(candidate)  # and not zero
    return candidate
