"""CertificateIssued events for billing tests: a seeded mix of municipalities, months, types, vendors, copies
and fees, with the exact expected counts computed the plain way (one Counter per question)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from typing import Any

from domain.japan_time import JST

SAPPORO, CHIYODA = "011002", "131016"
TYPES = ("RESIDENT_RECORD", "SEAL_REGISTRATION", "INCOME", "TAXATION", "TAX_PAYMENT", "DISASTER_DAMAGE")
VENDORS = ("Seven-Eleven", "Lawson", "FamilyMart")
FEES = {"RESIDENT_RECORD": 200, "SEAL_REGISTRATION": 200, "INCOME": 300, "TAXATION": 300, "TAX_PAYMENT": 350,
        "DISASTER_DAMAGE": 0}


def certificate_events(requests: int, *, seed: int = 7, months: tuple[tuple[int, int], ...] = ((2025, 11), (2025, 12)),
                       municipalities: tuple[str, ...] = (SAPPORO, CHIYODA)) -> list[dict[str, Any]]:
    """One event per copy; a request asks for 1–3 copies. Times fall on the first 28 days of the months,
    Japan time, including the first minutes of a month (stored UTC in the month before)."""
    rng = random.Random(seed)
    events = []
    for _ in range(requests):
        year, month = rng.choice(months)
        local = dt.datetime(year, month, rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), tzinfo=JST)
        municipality = rng.choice(municipalities)
        kind = rng.choice(TYPES)
        vendor = rng.choice(VENDORS)
        request_id = str(uuid.UUID(int=rng.getrandbits(128)))
        copies = rng.randint(1, 3)
        for copy_number in range(1, copies + 1):
            events.append({
                "certificate_id": str(uuid.UUID(int=rng.getrandbits(128))), "request_id": request_id,
                "municipality_code": municipality, "certificate_type": kind, "copy_number": copy_number,
                "copies": copies, "pages": 1, "kiosk_id": f"{vendor[:3].upper()}-{municipality}-1",
                "kiosk_vendor": vendor, "centre": "EAST" if vendor == "Seven-Eleven" else "WEST",
                "kiosk_municipality_code": municipality, "issued_at": local.astimezone(dt.UTC),
                "fee_yen": FEES[kind],
            })
    return events


def month_of(event: dict[str, Any]) -> str:
    local = event["issued_at"].astimezone(JST)
    return f"{local.year:04d}-{local.month:02d}"


def expected_counts(events: list[dict[str, Any]]) -> Counter[tuple[str, str, str, str]]:
    """(municipality, YYYY-MM, type, vendor) -> certificates."""
    return Counter((e["municipality_code"], month_of(e), e["certificate_type"], e["kiosk_vendor"]) for e in events)


def expected_fees(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(municipality, YYYY-MM) -> kiosk fees collected."""
    fees: Counter[tuple[str, str]] = Counter()
    for e in events:
        fees[(e["municipality_code"], month_of(e))] += e["fee_yen"]
    return fees
