"""The CertificateRequest fields' limits (domain.kiosk_request) and the id rule (domain.identifiers)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.identifiers import is_valid_id
from domain.kiosk_request import check_request_fields
from domain.kiosk_rules import ReasonCode

GOOD: dict[str, Any] = {
    "request_id": "6f1c2d9e-0b7a-4c1e-9f00-1a2b3c4d5e6f", "kiosk_id": "seven-eleven-302066-00001",
    "kiosk_vendor": "seven-eleven", "kiosk_municipality_code": "131016", "municipality_code": "302066",
    "fiscal_year": None, "paid_yen": 300, "auth_certificate": b"\x30" * 1200, "challenge_signature": b"\x00" * 256,
}


def test_a_kiosk_request_as_kiosks_send_it_passes() -> None:
    assert check_request_fields(GOOD) is None
    assert check_request_fields({**GOOD, "fiscal_year": 2026, "paid_yen": 0}) is None


@pytest.mark.parametrize("value", ["abc|K-1", "", ".", "..", "../x", "-x", "a b", "ａ", "x" * 129, "a\n"])
def test_ids_outside_the_rule(value: str) -> None:
    assert not is_valid_id(value)
    for field in ("request_id", "kiosk_id", "kiosk_vendor"):
        refused = check_request_fields({**GOOD, field: value})
        assert refused is not None and refused.code is ReasonCode.INVALID_REQUEST and field in refused.detail


@pytest.mark.parametrize(("field", "value"), [
    ("kiosk_municipality_code", "999997"), ("kiosk_municipality_code", "1310"),
    ("municipality_code", "30206"), ("municipality_code", "３０２０６６"), ("fiscal_year", 1988),
    ("fiscal_year", 2100), ("paid_yen", -1), ("paid_yen", 100_001), ("auth_certificate", b""),
    ("auth_certificate", b"\x30" * 8193), ("challenge_signature", b"\x00" * 255),
])
def test_every_limit(field: str, value: Any) -> None:
    refused = check_request_fields({**GOOD, field: value})
    assert refused is not None and refused.code is ReasonCode.INVALID_REQUEST and field in refused.detail


def test_the_longest_id_fits() -> None:
    assert is_valid_id("a" * 128) and is_valid_id("0.a_b-c")
