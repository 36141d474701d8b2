"""A municipality's register as CSV (pattern B, docs/domain.md §6.1): the columns `bcl backup restore --format csv`
writes, so that a restore can be imported as it is. One row is one Resident record with the address flattened
(address_prefecture … address_longitude) and the certificates as JSON; the columns the ledger does not use (dates
of the address, seal, tax, …) may be there or not and are not read.

`register_record` reads one row (a mapping of column name to text) into a record as the Avro decoder gives it
(the fields the ledger uses), or raises RowError naming the column and what is wrong."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from domain.codes import is_valid_individual_number, is_valid_resident_code
from domain.errors import BclError
from domain.register_validation import ITEM_LIMITS, TEXT_LIMITS

# Required text columns, and the record field each is (nested fields with a dot).
TEXT_COLUMNS: Mapping[str, str] = {
    "municipality_code": "municipality_code", "resident_code": "resident_code",
    "individual_number": "individual_number", "household_number": "household_number",
    "household_head_name": "household_head_name", "relationship": "relationship",
    "family_name": "family_name", "given_name": "given_name", "family_name_kana": "family_name_kana",
    "given_name_kana": "given_name_kana", "address_prefecture": "address.prefecture",
    "address_municipality": "address.municipality", "address_town": "address.town", "address_block": "address.block",
}
OPTIONAL_TEXT_COLUMNS: Mapping[str, str] = {"address_building": "address.building"}
SEXES = ("MALE", "FEMALE", "NOT_APPLICABLE")
STATUSES = ("CURRENT", "DELETED")
DELETION_REASONS = ("DEATH", "MOVE_OUT", "EMIGRATION", "OTHER")
REQUIRED_COLUMNS = (*TEXT_COLUMNS, "address_building", "birth_date", "sex", "address_latitude", "address_longitude",
                    "status", "deletion_reason", "deleted_on", "jpki_certificates")


class RowError(BclError):
    """A bad value in one column of a row."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(f"column {column}: {reason}")


def missing_columns(header: list[str]) -> list[str]:
    return [c for c in REQUIRED_COLUMNS if c not in header]


def _text(row: Mapping[str, str], column: str, field: str, required: bool) -> str | None:
    value = row.get(column) or ""
    if not value.strip():
        if required:
            raise RowError(column, "empty")
        return None
    limit = TEXT_LIMITS.get(field)
    if limit is not None and len(value) > limit:
        raise RowError(column, f"longer than {limit} characters")
    return value


def _date(row: Mapping[str, str], column: str, required: bool) -> dt.date | None:
    value = (row.get(column) or "").strip()
    if not value:
        if required:
            raise RowError(column, "empty")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RowError(column, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _choice(row: Mapping[str, str], column: str, choices: tuple[str, ...], required: bool) -> str | None:
    value = (row.get(column) or "").strip()
    if not value and not required:
        return None
    if value not in choices:
        raise RowError(column, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _degrees(row: Mapping[str, str], column: str, bound: float) -> float:
    value = (row.get(column) or "").strip()
    try:
        degrees = float(value)
    except ValueError:
        raise RowError(column, f"{value!r} is not a number of degrees") from None
    if not math.isfinite(degrees) or abs(degrees) > bound:
        raise RowError(column, f"{value} is outside -{bound:g}..{bound:g} degrees")
    return degrees


def _certificates(row: Mapping[str, str]) -> list[dict[str, Any]]:
    value = (row.get("jpki_certificates") or "").strip() or "[]"
    try:
        items = json.loads(value)
    except json.JSONDecodeError:
        raise RowError("jpki_certificates", "not JSON (a list like [{\"serial\": \"1a2b\", …}])") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("serial"), str)
                                              for i in items):
        raise RowError("jpki_certificates", "not a list of certificates each with a \"serial\"")
    if len(items) > ITEM_LIMITS["jpki_certificates"]:
        raise RowError("jpki_certificates", f"more than {ITEM_LIMITS['jpki_certificates']} certificates")
    return [{"serial": i["serial"]} for i in items]


def register_record(row: Mapping[str, str], municipality_code: str) -> dict[str, Any]:
    """The record of one CSV row of `municipality_code`'s register, or RowError for its first bad column."""
    texts = {field: _text(row, column, field, True) for column, field in TEXT_COLUMNS.items()}
    texts |= {field: _text(row, column, field, False) for column, field in OPTIONAL_TEXT_COLUMNS.items()}
    if texts["municipality_code"] != municipality_code:
        raise RowError("municipality_code", f"{texts['municipality_code']!r} is not the municipality imported "
                                            f"({municipality_code})")
    if not is_valid_resident_code(texts["resident_code"] or ""):
        raise RowError("resident_code", "not 11 digits")
    if not is_valid_individual_number(texts["individual_number"] or ""):
        raise RowError("individual_number", "not 12 digits or fails its check digit")
    status = _choice(row, "status", STATUSES, True)
    record: dict[str, Any] = {
        name: value for name, value in texts.items() if "." not in name}
    record |= {
        "birth_date": _date(row, "birth_date", True),
        "sex": _choice(row, "sex", SEXES, True),
        "address": {"prefecture": texts["address.prefecture"], "municipality": texts["address.municipality"],
                    "town": texts["address.town"], "block": texts["address.block"],
                    "building": texts["address.building"],
                    "latitude": _degrees(row, "address_latitude", 90), "longitude": _degrees(row, "address_longitude",
                                                                                              180)},
        "status": status,
        "deletion_reason": _choice(row, "deletion_reason", DELETION_REASONS, status == "DELETED"),
        "deleted_on": _date(row, "deleted_on", status == "DELETED"),
        "jpki_certificates": _certificates(row),
    }
    return record
