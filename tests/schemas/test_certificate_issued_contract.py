"""The CertificateIssued contract: parses, documents every field, round-trips through Avro."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro

import schemas

SCHEMA = json.loads((Path(schemas.__file__).parent / "avro" / "certificate_issued.avsc").read_text())


def test_every_field_and_enum_has_a_doc() -> None:
    assert SCHEMA["namespace"] == "jp.bcl.kiosk" and SCHEMA["name"] == "CertificateIssued"
    assert SCHEMA["doc"]
    for field in SCHEMA["fields"]:
        assert field.get("doc"), field["name"]
        if isinstance(field["type"], dict) and field["type"]["type"] == "enum":
            assert field["type"].get("doc"), field["name"]


def test_round_trip() -> None:
    parsed = fastavro.parse_schema(SCHEMA)
    event = {
        "certificate_id": "c-1", "request_id": "r-1", "municipality_code": "131016",
        "certificate_type": "SEAL_REGISTRATION", "copy_number": 1, "copies": 2, "pages": 1, "kiosk_id": "SEJ-1",
        "kiosk_vendor": "Seven-Eleven", "centre": "EAST", "kiosk_municipality_code": "131032",
        "issued_at": datetime(2025, 11, 4, 1, 0, tzinfo=UTC), "fee_yen": 300,
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, parsed) == event


def test_certificate_types_are_those_issued_through_bcl() -> None:
    types = next(f["type"]["symbols"] for f in SCHEMA["fields"] if f["name"] == "certificate_type")
    assert types == ["RESIDENT_RECORD", "SEAL_REGISTRATION", "INCOME", "TAXATION", "TAX_PAYMENT",
                     "DISASTER_DAMAGE", "DISASTER_AFFECTED"]
