"""Factories for test data that match the Avro contracts (plain dicts, fastavro-ready)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from domain.codes import individual_number_check_digit
from domain.japan_time import JST


def individual_number(n: int) -> str:
    body = f"{n:011d}"
    return body + str(individual_number_check_digit(body))


def make_resident(municipality_code: str = "302066", n: int = 1, **overrides: Any) -> dict[str, Any]:
    resident = {
        "municipality_code": municipality_code,
        "resident_code": f"{n:011d}",
        "individual_number": individual_number(n),
        "household_number": f"H{n // 3:09d}",
        "household_head_name": "田辺\u3000一郎",
        "relationship": "世帯主",
        "family_name": "田辺",
        "given_name": "一郎",
        "family_name_kana": "タナベ",
        "given_name_kana": "イチロウ",
        "birth_date": dt.date(1980, 5, 17),
        "sex": "MALE",
        "address": {"prefecture": "和歌山県", "municipality": "田辺市", "town": "今福一丁目", "block": "3番12号",
                    "building": None, "latitude": 33.73, "longitude": 135.38},
        "address_set_on": dt.date(2010, 4, 1),
        "became_resident_on": dt.date(2010, 4, 1),
        "notified_on": dt.date(2010, 4, 5),
        "previous_address": "和歌山県和歌山市本町二丁目1番地",
        "registered_domicile": "和歌山県田辺市今福一丁目3番地",
        "domicile_head": "田辺\u3000一郎",
        "status": "CURRENT",
        "deletion_reason": None,
        "deleted_on": None,
        "seal": None,
        "tax_records": [],
        "jpki_certificates": [],
    }
    resident.update(overrides)
    return resident


def make_change(
    sequence: int,
    resident: dict[str, Any] | None,
    *,
    municipality_code: str = "302066",
    resident_code: str | None = None,
    change_type: str = "FULL_LOAD",
    event_time: dt.datetime = dt.datetime(2026, 11, 9, 0, 0, tzinfo=JST),
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{municipality_code}/{sequence}")),
        "municipality_code": municipality_code,
        "resident_code": resident_code or (resident["resident_code"] if resident else "00000000000"),
        "sequence": sequence,
        "change_type": change_type,
        "event_time": event_time.astimezone(dt.UTC),
        "notified_on": event_time.date(),
        "sent_at": event_time.astimezone(dt.UTC),
        "after": resident,
    }
