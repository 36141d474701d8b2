"""Validation of a decoded ResidentChange before it is applied (DOMAIN.md 2.1, 2.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.domain.codes import is_valid_individual_number, is_valid_municipality_code, is_valid_resident_code

# A jump further ahead than this is not a gap but a corrupt sequence number.
MAX_SEQUENCE_JUMP = 10_000_000


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str


def validate_change(change: dict[str, Any], key: bytes | None) -> Rejection | None:
    """None when the change can be applied, otherwise why not. Never mentions personal data."""
    muni = change["municipality_code"]
    if not is_valid_municipality_code(muni):
        return Rejection("BAD_MUNICIPALITY_CODE", f"municipality code {muni!r} fails its check digit or form")
    rc = change["resident_code"]
    if not is_valid_resident_code(rc):
        return Rejection("BAD_RESIDENT_CODE", "resident code is not 11 digits")
    if key is not None and key != f"{muni}:{rc}".encode():
        return Rejection("KEY_MISMATCH", "message key does not match the municipality and resident code of the event")
    if change["sequence"] < 1:
        return Rejection("BAD_SEQUENCE", f"sequence number {change['sequence']} is below 1")
    after = change["after"]
    if after is None:
        return None if change["change_type"] == "RECORD_REMOVED" else Rejection(
            "MISSING_RECORD", f"{change['change_type']} event without the record after the change"
        )
    if after["municipality_code"] != muni or after["resident_code"] != rc:
        return Rejection("RECORD_MISMATCH", "the record's municipality or resident code differs from the event's")
    if not is_valid_individual_number(after["individual_number"]):
        return Rejection("BAD_INDIVIDUAL_NUMBER", "individual number fails its check digit or is not 12 digits")
    return None


def message_key(municipality_code: str, resident_code: str) -> bytes:
    """Key of bcl.register.diffs and bcl.residents: municipality code + resident code."""
    return f"{municipality_code}:{resident_code}".encode()
