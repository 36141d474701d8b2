"""Validation of a decoded ResidentChange before it is applied (docs/domain.md §2.1, 2.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.codes import is_valid_individual_number, is_valid_municipality_code, is_valid_resident_code

# A jump further ahead than this is not a gap but a corrupt sequence number.
MAX_SEQUENCE_JUMP = 10_000_000


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str


def validate_change(change: dict[str, Any], key: bytes | None) -> Rejection | None:
    """None when the change can be applied, otherwise why not. Never mentions personal data."""
    after = change["after"]
    return validate_change_fields(
        municipality_code=change["municipality_code"],
        resident_code=change["resident_code"],
        key=key,
        sequence=change["sequence"],
        change_type=change["change_type"],
        record_present=after is not None,
        record_municipality_code=after["municipality_code"] if after else None,
        record_resident_code=after["resident_code"] if after else None,
        municipality_code_valid=is_valid_municipality_code(change["municipality_code"]),
        individual_number_valid=after is not None and is_valid_individual_number(after["individual_number"]),
    )


def validate_change_fields(
    *,
    municipality_code: str,
    resident_code: str,
    key: bytes | None,
    sequence: int,
    change_type: str,
    record_present: bool,
    record_municipality_code: str | None,
    record_resident_code: str | None,
    municipality_code_valid: bool,
    individual_number_valid: bool,
) -> Rejection | None:
    """The same rules over plain fields, with the check digits already evaluated (so that a batch
    can evaluate them vectorised)."""
    muni, rc = municipality_code, resident_code
    if not municipality_code_valid:
        return Rejection("BAD_MUNICIPALITY_CODE", f"municipality code {muni!r} fails its check digit or form")
    if not is_valid_resident_code(rc):
        return Rejection("BAD_RESIDENT_CODE", "resident code is not 11 digits")
    if key is not None and key != message_key(muni, rc):
        return Rejection("KEY_MISMATCH", "message key does not match the municipality and resident code of the event")
    if sequence < 1:
        return Rejection("BAD_SEQUENCE", f"sequence number {sequence} is below 1")
    if not record_present:
        return None if change_type == "RECORD_REMOVED" else Rejection(
            "MISSING_RECORD", f"{change_type} event without the record after the change"
        )
    if record_municipality_code != muni or record_resident_code != rc:
        return Rejection("RECORD_MISMATCH", "the record's municipality or resident code differs from the event's")
    if not individual_number_valid:
        return Rejection("BAD_INDIVIDUAL_NUMBER", "individual number fails its check digit or is not 12 digits")
    return None


def message_key(municipality_code: str, resident_code: str) -> bytes:
    """Key of bcl.register.diffs and bcl.residents: municipality code + resident code."""
    return f"{municipality_code}:{resident_code}".encode()
