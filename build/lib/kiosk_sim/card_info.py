"""Records of the card-info application (券面事項入力補助AP) and their byte formats. Pure: no I/O.

- EF 0001, the individual number: `FF 10 0C` + 12 ASCII digits, padded with FF to 17 bytes.
- EF 0002, the basic four items: a constructed `FF 20` record holding `DF22` name (UTF-8, family and given
  name separated by U+3000), `DF23` address (UTF-8), `DF24` birth date `YYYYMMDD`, `DF25` sex as one
  ISO 5218 digit (1 male, 2 female, 9 not applicable). Lengths are BER definite lengths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INDIVIDUAL_NUMBER_TAG = b"\xff\x10"
INDIVIDUAL_NUMBER_EF_SIZE = 17
BASIC_FOUR_TAG = b"\xff\x20"
NAME_TAG = b"\xdf\x22"
ADDRESS_TAG = b"\xdf\x23"
BIRTH_DATE_TAG = b"\xdf\x24"
SEX_TAG = b"\xdf\x25"

_SEXES = frozenset({"1", "2", "9"})


@dataclass(frozen=True, slots=True)
class CardHolder:
    """What the card-info application holds about its holder. Personal data: never log it."""

    individual_number: str  # 12 digits
    name: str  # family name, U+3000, given name
    address: str
    birth_date: str  # YYYYMMDD
    sex: str  # ISO 5218 digit

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{12}", self.individual_number):
            raise ValueError("the individual number has 12 digits")
        if not re.fullmatch(r"[0-9]{8}", self.birth_date):
            raise ValueError("the birth date is YYYYMMDD")
        if self.sex not in _SEXES:
            raise ValueError("sex is an ISO 5218 digit: 1, 2 or 9")
        if not self.name or not self.address:
            raise ValueError("name and address must not be empty")

    def __repr__(self) -> str:  # keeps personal data out of logs and tracebacks
        return "CardHolder(<personal data>)"


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    raise ValueError(f"value too long for a card record: {n} bytes")


def _tlv(tag: bytes, value: bytes) -> bytes:
    return tag + _ber_length(len(value)) + value


def _read_tlv(data: bytes, pos: int) -> tuple[bytes, bytes, int]:
    """(tag, value, next position) of the two-byte-tag TLV at `pos`."""
    if pos + 3 > len(data):
        raise ValueError("truncated TLV")
    tag = data[pos : pos + 2]
    first = data[pos + 2]
    pos += 3
    if first < 0x80:
        length = first
    elif first in (0x81, 0x82):
        width = first - 0x80
        if pos + width > len(data):
            raise ValueError("truncated TLV length")
        length = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    else:
        raise ValueError(f"unsupported TLV length byte {first:02X}")
    if pos + length > len(data):
        raise ValueError("TLV value runs past the end of the record")
    return tag, data[pos : pos + length], pos + length


def encode_individual_number(number: str) -> bytes:
    body = _tlv(INDIVIDUAL_NUMBER_TAG, number.encode("ascii"))
    return body.ljust(INDIVIDUAL_NUMBER_EF_SIZE, b"\xff")


def decode_individual_number(data: bytes) -> str:
    tag, value, _ = _read_tlv(data, 0)
    if tag != INDIVIDUAL_NUMBER_TAG or not re.fullmatch(rb"[0-9]{12}", value):
        raise ValueError("EF 0001 does not hold a 12-digit individual number")
    return value.decode("ascii")


def encode_basic_four(holder: CardHolder) -> bytes:
    inner = (
        _tlv(NAME_TAG, holder.name.encode("utf-8"))
        + _tlv(ADDRESS_TAG, holder.address.encode("utf-8"))
        + _tlv(BIRTH_DATE_TAG, holder.birth_date.encode("ascii"))
        + _tlv(SEX_TAG, holder.sex.encode("ascii"))
    )
    return _tlv(BASIC_FOUR_TAG, inner)


def basic_four_length(header: bytes) -> int:
    """Total length of the EF 0002 record from its first bytes (at least 5), so a reader knows how much to read."""
    if len(header) < 3 or header[:2] != BASIC_FOUR_TAG:
        raise ValueError("EF 0002 does not start with an FF 20 record")
    first = header[2]
    if first < 0x80:
        return 3 + first
    width = first - 0x80
    if width not in (1, 2) or len(header) < 3 + width:
        raise ValueError("EF 0002 has an unsupported record length")
    return 3 + width + int.from_bytes(header[3 : 3 + width], "big")


def decode_basic_four(data: bytes, individual_number: str) -> CardHolder:
    tag, inner, _ = _read_tlv(data, 0)
    if tag != BASIC_FOUR_TAG:
        raise ValueError("EF 0002 does not start with an FF 20 record")
    fields: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(inner):
        item_tag, value, pos = _read_tlv(inner, pos)
        fields[item_tag] = value
    missing = [t.hex().upper() for t in (NAME_TAG, ADDRESS_TAG, BIRTH_DATE_TAG, SEX_TAG) if t not in fields]
    if missing:
        raise ValueError(f"EF 0002 lacks the items {', '.join(missing)}")
    try:
        return CardHolder(
            individual_number=individual_number,
            name=fields[NAME_TAG].decode("utf-8"),
            address=fields[ADDRESS_TAG].decode("utf-8"),
            birth_date=fields[BIRTH_DATE_TAG].decode("ascii"),
            sex=fields[SEX_TAG].decode("ascii"),
        )
    except UnicodeDecodeError as exc:
        raise ValueError(f"EF 0002 holds text that is not UTF-8: {exc.reason}") from exc
