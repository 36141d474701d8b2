"""A small hand-made issued-certificate log with known answers (docs/domain.md §7 statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.japan_time import utc_instant

SAPPORO, HAKODATE, CHIYODA, MINATO = "011002", "012025", "131016", "131032"

# (municipality, type, Japan wall-clock time, kiosk municipality, vendor, kiosk) — see the comments for
# whether each is inside office hours.
ROWS: list[tuple[str, str, datetime, str, str, str]] = [
    (SAPPORO, "RESIDENT_RECORD", datetime(2025, 11, 4, 10, 0), SAPPORO, "Seven-Eleven", "K1"),  # office
    (SAPPORO, "SEAL_REGISTRATION", datetime(2025, 11, 3, 10, 0), SAPPORO, "Seven-Eleven", "K1"),  # 文化の日
    (SAPPORO, "INCOME", datetime(2025, 11, 24, 11, 0), SAPPORO, "Seven-Eleven", "K2"),  # substitute holiday
    (SAPPORO, "RESIDENT_RECORD", datetime(2025, 12, 29, 10, 0), SAPPORO, "Seven-Eleven", "K2"),  # year-end
    (SAPPORO, "RESIDENT_RECORD", datetime(2026, 1, 5, 8, 30), SAPPORO, "Lawson", "K3"),  # office (opens)
    (HAKODATE, "RESIDENT_RECORD", datetime(2026, 1, 5, 17, 15), SAPPORO, "Lawson", "K3"),  # closed at 17:15
    (HAKODATE, "TAXATION", datetime(2026, 1, 5, 17, 14), HAKODATE, "Lawson", "K3"),  # office
    (CHIYODA, "TAX_PAYMENT", datetime(2025, 11, 8, 12, 0), MINATO, "FamilyMart", "K4"),  # Saturday
    (CHIYODA, "DISASTER_DAMAGE", datetime(2025, 4, 1, 0, 30), CHIYODA, "FamilyMart", "K4"),  # night
    (CHIYODA, "RESIDENT_RECORD", datetime(2025, 3, 31, 23, 59), CHIYODA, "FamilyMart", "K5"),  # night, FY2024
    (CHIYODA, "RESIDENT_RECORD", datetime(2025, 11, 4, 8, 29), CHIYODA, "FamilyMart", "K5"),  # before opening
]


def events() -> list[dict[str, Any]]:
    return [
        {
            "certificate_id": f"cert-{i:03d}", "request_id": f"req-{i:03d}", "municipality_code": code,
            "certificate_type": kind, "copy_number": 1, "copies": 1, "pages": 1, "kiosk_id": kiosk,
            "kiosk_vendor": vendor, "centre": "EAST" if vendor == "Seven-Eleven" else "WEST",
            "kiosk_municipality_code": kiosk_code, "issued_at": utc_instant(local), "fee_yen": 300,
        }
        for i, (code, kind, local, kiosk_code, vendor, kiosk) in enumerate(ROWS)
    ]
