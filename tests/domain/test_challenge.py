"""The BCL-KIOSK-v2 challenge (domain.challenge): every field of the contract, a fixed layout, injective."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from domain.challenge import SIGNED_FIELDS, challenge_bytes

AVSC = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "certificate_request.avsc"
REQUEST: dict[str, Any] = {
    "request_id": "r-1", "kiosk_id": "K1", "kiosk_vendor": "lawson", "centre": "EAST",
    "kiosk_municipality_code": "131016", "municipality_code": "302066", "certificate_type": "RESIDENT_RECORD",
    "household_scope": "SELF", "include_head_and_relationship": False, "include_domicile": True,
    "fiscal_year": None, "copies": 2, "paid_yen": 400,
    "requested_at": dt.datetime(2026, 11, 20, 1, 0, 0, 123000, tzinfo=dt.UTC), "auth_certificate": b"\x30\x00",
}


def test_every_field_of_the_contract_but_the_signature_is_signed() -> None:
    fields = [f["name"] for f in json.loads(AVSC.read_text())["fields"]]
    signed = [name for name, _ in SIGNED_FIELDS]
    assert len(signed) == len(set(signed)) and set(signed) == set(fields) - {"challenge_signature"}


def test_the_layout_is_the_documented_one() -> None:
    def field(value: bytes) -> bytes:
        return len(value).to_bytes(4, "big") + value
    millis = round(REQUEST["requested_at"].timestamp() * 1000)
    expected = (b"BCL-KIOSK-v2" + b"".join(field(v.encode()) for v in (
        "r-1", "K1", "lawson", "EAST", "131016", "302066", "RESIDENT_RECORD", "SELF"))
        + field(b"\x00") + field(b"\x01") + field(b"") + field((2).to_bytes(8, "big"))
        + field((400).to_bytes(8, "big")) + field(millis.to_bytes(8, "big"))
        + field(hashlib.sha256(b"\x30\x00").digest()))
    assert challenge_bytes(REQUEST) == expected
    assert challenge_bytes({**REQUEST, "fiscal_year": 2026}).count(field((2026).to_bytes(8, "big"))) == 1


@pytest.mark.parametrize(("name", "other"), [
    ("request_id", "r-2"), ("kiosk_id", "K2"), ("kiosk_vendor", "familymart"), ("centre", "WEST"),
    ("kiosk_municipality_code", "302066"), ("municipality_code", "131016"), ("certificate_type", "INCOME"),
    ("household_scope", "WHOLE_HOUSEHOLD"), ("include_head_and_relationship", True), ("include_domicile", False),
    ("fiscal_year", 2026), ("copies", 3), ("paid_yen", 600),
    ("requested_at", dt.datetime(2026, 11, 20, 1, 0, 0, 124000, tzinfo=dt.UTC)), ("auth_certificate", b"\x30\x01"),
])
def test_changing_any_field_changes_the_bytes(name: str, other: Any) -> None:
    assert challenge_bytes({**REQUEST, name: other}) != challenge_bytes(REQUEST)


def test_moving_bytes_between_fields_changes_the_bytes() -> None:
    """The length prefixes: `K1`+`lawson` is not `K1l`+`awson` (v1 joined fields with `|`)."""
    assert challenge_bytes({**REQUEST, "kiosk_id": "K1l", "kiosk_vendor": "awson"}) != challenge_bytes(REQUEST)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        challenge_bytes({**REQUEST, "requested_at": dt.datetime(2026, 11, 20)})
