"""Validation of a decoded ResidentChange before it is applied (docs/domain.md §2.1, 2.3).

The limits below are the one statement of what an event may hold; the Avro contracts' `doc` fields
and docs/domain.md repeat their values for readers (a test keeps them in step)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.codes import is_valid_individual_number, is_valid_municipality_code, is_valid_resident_code
from domain.japan_time import JST
from domain.municipalities import is_known_municipality

# How far above a municipality's contiguous watermark (every number up to it received) a sequence
# number may be. Measured from the watermark, not from the highest number seen, so that a forged jump
# does not move the limit for the next one. A whole full load can arrive ahead of the watermark (its
# events are spread over partitions), and the largest register (横浜市) holds 3.8 million people.
MAX_SEQUENCE_JUMP = 10_000_000

# The resident register exists since the Basic Resident Register Act (住民基本台帳法) took effect.
EARLIEST_EVENT_TIME = dt.datetime(1967, 11, 10, tzinfo=JST)
# How far ahead of the receiver's clock an event may take effect (a simulated adapter runs ahead of it).
MAX_EVENT_AHEAD = dt.timedelta(days=366)

# Most characters a text field of the record may hold, by field path (nested fields with a dot). Names
# of foreign residents are written in full, hence room well beyond any Japanese name.
NAME_CHARS = 100
ADDRESS_CHARS = 200
TEXT_LIMITS: Mapping[str, int] = {
    "household_number": 20,
    "household_head_name": NAME_CHARS,
    "relationship": 20,
    "family_name": NAME_CHARS,
    "given_name": NAME_CHARS,
    "family_name_kana": NAME_CHARS,
    "given_name_kana": NAME_CHARS,
    "address.prefecture": 10,
    "address.municipality": 50,
    "address.town": ADDRESS_CHARS,
    "address.block": ADDRESS_CHARS,
    "address.building": ADDRESS_CHARS,
    "previous_address": ADDRESS_CHARS,
    "registered_domicile": ADDRESS_CHARS,
    "domicile_head": NAME_CHARS,
    "seal.registration_number": 20,
}
# Most bytes of the seal impression (印影, a small PNG) and most items of the record's lists.
MAX_SEAL_IMAGE_BYTES = 64 * 1024
ITEM_LIMITS: Mapping[str, int] = {"tax_records": 50, "jpki_certificates": 10}


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str


def validate_change(change: dict[str, Any], key: bytes | None, now: dt.datetime) -> Rejection | None:
    """None when the change can be applied, otherwise why not. Never mentions personal data.
    `now` is the receiver's clock (an event may not take effect too far after it)."""
    after = change["after"]
    return validate_change_fields(
        municipality_code=change["municipality_code"],
        resident_code=change["resident_code"],
        key=key,
        sequence=change["sequence"],
        change_type=change["change_type"],
        event_time_plausible=is_event_time_plausible(change["event_time"], now),
        record_present=after is not None,
        record_municipality_code=after["municipality_code"] if after else None,
        record_resident_code=after["resident_code"] if after else None,
        municipality_code_valid=is_valid_municipality_code(change["municipality_code"]),
        individual_number_valid=after is not None and is_valid_individual_number(after["individual_number"]),
        oversized_field=oversized_field(after) if after else None,
    )


def validate_change_fields(
    *,
    municipality_code: str,
    resident_code: str,
    key: bytes | None,
    sequence: int,
    change_type: str,
    event_time_plausible: bool,
    record_present: bool,
    record_municipality_code: str | None,
    record_resident_code: str | None,
    municipality_code_valid: bool,
    individual_number_valid: bool,
    oversized_field: str | None,
) -> Rejection | None:
    """The same rules over plain fields, with the check digits, the event time and the size limits
    already evaluated (so that a batch can evaluate them vectorised)."""
    muni, rc = municipality_code, resident_code
    if not municipality_code_valid:
        return Rejection("BAD_MUNICIPALITY_CODE", f"municipality code {muni!r} fails its check digit or form")
    if not is_known_municipality(muni):
        return Rejection("UNKNOWN_MUNICIPALITY", f"municipality code {muni!r} is not in the list of municipalities")
    if not is_valid_resident_code(rc):
        return Rejection("BAD_RESIDENT_CODE", "resident code is not 11 digits")
    if key is None:
        return Rejection("MISSING_KEY", "the message has no key (expected <municipality>:<resident code>)")
    if key != message_key(muni, rc):
        return Rejection("KEY_MISMATCH", "message key does not match the event's municipality and resident code")
    if sequence < 1:
        return Rejection("BAD_SEQUENCE", f"sequence number {sequence} is below 1")
    if not event_time_plausible:
        return Rejection("BAD_EVENT_TIME", f"event time is before {EARLIEST_EVENT_TIME:%Y-%m-%d} (the register's "
                         f"start) or more than {MAX_EVENT_AHEAD.days} days ahead of the receiver's clock")
    if not record_present:
        return None if change_type == "RECORD_REMOVED" else Rejection(
            "MISSING_RECORD", f"{change_type} event without the record after the change"
        )
    if record_municipality_code != muni or record_resident_code != rc:
        return Rejection("RECORD_MISMATCH", "the record's municipality or resident code differs from the event's")
    if not individual_number_valid:
        return Rejection("BAD_INDIVIDUAL_NUMBER", "individual number fails its check digit or is not 12 digits")
    if oversized_field is not None:
        return Rejection("FIELD_TOO_LONG", f"{oversized_field} is over its limit ({limit_of(oversized_field)})")
    return None


def event_time_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The earliest and the latest event time accepted by a receiver whose clock says `now`."""
    return EARLIEST_EVENT_TIME, now + MAX_EVENT_AHEAD


def is_event_time_plausible(event_time: dt.datetime, now: dt.datetime) -> bool:
    earliest, latest = event_time_window(now)
    return earliest <= event_time <= latest


def sequence_out_of_reach(sequence: int, contiguous: int) -> Rejection | None:
    """A number too far above the municipality's contiguous watermark is corrupt or forged (see
    MAX_SEQUENCE_JUMP); it is not applied, so it can neither open a gap that never closes nor move the
    limit for the next one."""
    if sequence <= contiguous + MAX_SEQUENCE_JUMP:
        return None
    return Rejection("BAD_SEQUENCE", f"sequence {sequence} is more than {MAX_SEQUENCE_JUMP} above {contiguous}, "
                     "the highest number up to which the municipality's sequence is contiguous")


def limit_of(field: str) -> str:
    """A limit as said in a reason: '100 characters', '10 items', '65536 bytes'."""
    if field in TEXT_LIMITS:
        return f"{TEXT_LIMITS[field]} characters"
    if field in ITEM_LIMITS:
        return f"{ITEM_LIMITS[field]} items"
    return f"{MAX_SEAL_IMAGE_BYTES} bytes"


SEAL_IMAGE = "seal.impression_png"


def oversized_field(record: Mapping[str, Any]) -> str | None:
    """The first field of a decoded record over its limit, or None."""
    for path, limit in TEXT_LIMITS.items():
        value = _at(record, path)
        if value is not None and len(value) > limit:
            return path
    image = _at(record, SEAL_IMAGE)
    if image is not None and len(image) > MAX_SEAL_IMAGE_BYTES:
        return SEAL_IMAGE
    return next((name for name, limit in ITEM_LIMITS.items() if len(record[name]) > limit), None)


def _at(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if value is not None else None
    return value


def message_key(municipality_code: str, resident_code: str) -> bytes:
    """Key of bcl.register.diffs and bcl.residents: municipality code + resident code."""
    return f"{municipality_code}:{resident_code}".encode()
