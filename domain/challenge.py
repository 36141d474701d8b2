"""The bytes a resident's card signs for a kiosk request (BCL-KIOSK-v2): part of the CertificateRequest
contract, shared by the kiosk (which has the card sign them) and the certificate worker (which rebuilds
them from the request it received and verifies the signature). Pure: no I/O.

Why every field: whatever decides what is issued, shown or billed must be what the resident agreed to
at the kiosk. v1 signed only the request id, kiosk id and time, so anybody on the way could turn a
signed 住民票の写し into three 所得証明書, SELF into WHOLE_HOUSEHOLD with 本籍, or change the vendor and
kiosk municipality that billing and statistics use. v2 binds every field of the request but the
signature itself, and the card's certificate by its SHA-256 (a key may be on more than one card in
the test PKI's key pool, so the key alone does not name the card).

Layout (docs/card_protocol.md, "The challenge"): the ASCII bytes `BCL-KIOSK-v2`, then each field of
SIGNED_FIELDS in that order as a 4-byte big-endian length followed by that many bytes:
strings and enum symbols in UTF-8; booleans one byte 0x00 or 0x01; ints (copies, paid_yen) and
requested_at (milliseconds since 1970-01-01 UTC) 8-byte big-endian two's complement; fiscal_year
empty (length 0) when null, else 8 bytes; auth_certificate the 32-byte SHA-256 of its DER.
The length prefixes make the encoding injective: no two different requests give the same bytes.
The card signs them as RSA PKCS#1 v1.5 over their SHA-256, so the digest it signs covers them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Callable, Mapping
from typing import Any

VERSION = b"BCL-KIOSK-v2"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LONG = struct.Struct(">q")
_LENGTH = struct.Struct(">I")


def encode_text(value: str) -> bytes:
    return value.encode()


def _flag(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _long(value: int) -> bytes:
    return _LONG.pack(value)


def _optional_long(value: int | None) -> bytes:
    return b"" if value is None else _LONG.pack(value)


def encode_millis(value: dt.datetime) -> bytes:
    if value.tzinfo is None:
        raise ValueError("requested_at must be timezone-aware")
    since = value - EPOCH  # whole milliseconds in integers (a timedelta floor division costs twice as much)
    return _LONG.pack((since.days * 86_400 + since.seconds) * 1000 + since.microseconds // 1000)


def encode_sha256(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


# Every CertificateRequest field but challenge_signature, in signing order, with its encoding.
SIGNED_FIELDS: tuple[tuple[str, Callable[[Any], bytes]], ...] = (
    ("request_id", encode_text),
    ("kiosk_id", encode_text),
    ("kiosk_vendor", encode_text),
    ("centre", encode_text),
    ("kiosk_municipality_code", encode_text),
    ("municipality_code", encode_text),
    ("certificate_type", encode_text),
    ("household_scope", encode_text),
    ("include_head_and_relationship", _flag),
    ("include_domicile", _flag),
    ("fiscal_year", _optional_long),
    ("copies", _long),
    ("paid_yen", _long),
    ("requested_at", encode_millis),
    ("auth_certificate", encode_sha256),
)


def signed_bytes(version: bytes, fields: tuple[tuple[str, Callable[[Any], bytes]], ...],
                 record: Mapping[str, Any]) -> bytes:
    """`version`, then each field as a 4-byte big-endian length and its encoding: the one layout of what a card
    signs (a kiosk request here; an online application in domain.disaster_applications)."""
    parts = [version]
    for name, encode in fields:
        value = encode(record[name])
        parts.append(_LENGTH.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def challenge_bytes(request: Mapping[str, Any]) -> bytes:
    """The BCL-KIOSK-v2 bytes of a request (a decoded or about-to-be-encoded CertificateRequest)."""
    return signed_bytes(VERSION, SIGNED_FIELDS, request)
