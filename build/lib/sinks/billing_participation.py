"""How each municipality takes part in BCL, for billing: issuing mode, month of joining and the disaster-victim
support system's start. A small CSV table kept by the operator; a municipality without a row issues through
BCL and has taken part (with the disaster system) since before any fiscal year billed.

Columns: municipality_code, mode (bcl|own), joined (YYYY-MM or empty), disaster_system_from (YYYY-MM, empty for
"from joining", or "none" when the municipality does not use the system).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from domain.billing import BillingMonth, Participation
from domain.codes import is_valid_municipality_code
from domain.errors import BclError
from domain.fees import FeeError, IssuingMode

COLUMNS = ("municipality_code", "mode", "joined", "disaster_system_from")
NOT_USED = "none"


class ParticipationError(BclError):
    """The participation table cannot be read or is given a bad value."""


def _month(text: str, what: str, path: Path) -> BillingMonth | None:
    if not text:
        return None
    try:
        return BillingMonth.parse(text)
    except FeeError as exc:
        raise ParticipationError(f"{path}: {what}: {exc}") from exc


def read_participation(path: Path) -> dict[str, Participation]:
    if not path.exists():
        return {}
    table: dict[str, Participation] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            code = (row.get("municipality_code") or "").strip()
            mode_text = (row.get("mode") or "bcl").strip()
            try:
                mode = IssuingMode(mode_text)
            except ValueError as exc:
                raise ParticipationError(f"{path}: municipality {code}: mode must be bcl or own, got {mode_text!r}") \
                    from exc
            disaster = (row.get("disaster_system_from") or "").strip()
            table[code] = Participation(
                mode=mode,
                joined=_month((row.get("joined") or "").strip(), f"municipality {code}: joined", path),
                disaster_system=disaster != NOT_USED,
                disaster_system_from=None if disaster == NOT_USED else _month(
                    disaster, f"municipality {code}: disaster_system_from", path),
            )
    return table


def participation_of(path: Path, municipality_code: str) -> Participation:
    return read_participation(path).get(municipality_code, Participation())


def set_participation(path: Path, municipality_code: str, participation: Participation) -> None:
    """Add or replace a municipality's row (the file is rewritten atomically)."""
    if not is_valid_municipality_code(municipality_code):
        raise ParticipationError(f"{municipality_code!r} is not a valid municipality code (6 digits, check digit)")
    table = read_participation(path)
    table[municipality_code] = participation
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for code, p in sorted(table.items()):
            if not p.disaster_system:
                disaster = NOT_USED
            else:
                disaster = str(p.disaster_system_from) if p.disaster_system_from else ""
            writer.writerow([code, str(p.mode), str(p.joined) if p.joined else "", disaster])
    os.replace(temporary, path)
