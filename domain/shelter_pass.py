"""The printed registration QR of a shelter check-in (避難者登録票, docs/domain.md §6.6): the text inside the QR code.
Pure.

Why: in 2024 many evacuees had no card at hand. Staff print, for a person of a disaster's ledger, a slip whose QR
code names them; the shelter terminal reads it and the intake checks it. The text names the person only by codes
(disaster, municipality, resident code: no name, no individual number) and carries an HMAC-SHA-256 (first 16
bytes) under a key of the data dir, so a slip cannot be made up or altered; it says who the slip is for, so a
lost slip reveals no more than a resident code.

Format: `BCL-SHELTER-1.` + base64url (unpadded) of the JSON {"d": disaster id, "m": municipality code, "r":
resident code}, `.` + base64url of the tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from domain.shelter_stays import RefusalCode, StayError

PREFIX = "BCL-SHELTER-1."
TAG_BYTES = 16
MAX_TEXT = 512


@dataclass(frozen=True)
class ShelterPass:
    disaster_id: str
    municipality_code: str
    resident_code: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, body: str) -> bytes:
    return hmac.new(key, (PREFIX + body).encode(), hashlib.sha256).digest()[:TAG_BYTES]


def pass_text(shelter_pass: ShelterPass, key: bytes) -> str:
    body = _b64(json.dumps({"d": shelter_pass.disaster_id, "m": shelter_pass.municipality_code,
                            "r": shelter_pass.resident_code}, separators=(",", ":")).encode())
    return f"{PREFIX}{body}.{_b64(_tag(key, body))}"


def read_pass(text: str, key: bytes) -> ShelterPass:
    """The person a QR text names, or StayError when it is no registration QR or was not made with this key."""
    text = text.strip()
    if len(text) > MAX_TEXT or not text.startswith(PREFIX) or text.count(".") != 2:
        raise StayError(f"the QR code is not a shelter registration (it starts with {PREFIX})",
                        RefusalCode.BAD_QR)
    body, tag = text[len(PREFIX):].split(".")
    try:
        given = _unb64(tag)
        values = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        raise StayError("the registration QR is damaged: scan it again or enter the person by name",
                        RefusalCode.BAD_QR) from None
    if not hmac.compare_digest(given, _tag(key, body)):
        raise StayError("the registration QR was not issued by this system (its signature does not match)",
                        RefusalCode.BAD_QR)
    if not isinstance(values, dict) or not all(isinstance(values.get(k), str) for k in "dmr"):
        raise StayError("the registration QR is damaged: scan it again or enter the person by name",
                        RefusalCode.BAD_QR)
    return ShelterPass(values["d"], values["m"], values["r"])
