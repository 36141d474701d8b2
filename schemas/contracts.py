"""Which Avro schema is the contract of each topic's values, and how its files load.

Subjects follow Confluent's TopicNameStrategy (`<topic>-value`). A contract may use named types
defined in other files (ResidentChange embeds Resident); the files are loaded in order and the
registered schema is the expanded, self-contained one, so any registry can serve it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro.schema

from infra import topics

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"


@dataclass(frozen=True)
class Contract:
    topic: str
    record: str  # full name of the value record
    files: tuple[str, ...]  # schema files, dependencies first

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"


CONTRACTS: dict[str, Contract] = {
    c.topic: c
    for c in (
        Contract(topics.REGISTER_DIFFS, "jp.bcl.register.ResidentChange", ("resident.avsc", "resident_change.avsc")),
        Contract(topics.RESIDENTS, "jp.bcl.register.Resident", ("resident.avsc",)),
        Contract(topics.DLQ, "jp.bcl.ops.DeadLetter", ("dead_letter.avsc",)),
        Contract(topics.CERTIFICATES_ISSUED, "jp.bcl.kiosk.CertificateIssued", ("certificate_issued.avsc",)),
        Contract(topics.JPKI_REVOCATIONS, "jp.bcl.jpki.Revocation", ("revocation.avsc",)),
        Contract(topics.KIOSK_REQUESTS, "jp.bcl.kiosk.CertificateRequest", ("certificate_request.avsc",)),
        Contract(topics.KIOSK_RESPONSES, "jp.bcl.kiosk.CertificateResponse", ("certificate_response.avsc",)),
        Contract(topics.KIOSK_CLAIMS, "jp.bcl.kiosk.CertificateResponse", ("certificate_response.avsc",)),
        Contract(topics.DISASTER_EVENTS, "jp.bcl.disaster.DisasterEvent", ("disaster_event.avsc",)),
        Contract(topics.DISASTER_ASSESSMENTS, "jp.bcl.disaster.DwellingAssessment", ("dwelling_assessment.avsc",)),
        Contract(topics.DISASTER_APPLICATIONS, "jp.bcl.disaster.DisasterApplication",
                 ("disaster_application.avsc",)),
        Contract(topics.SHELTER_STAYS, "jp.bcl.disaster.ShelterStay", ("shelter_stay.avsc",)),
        Contract(topics.WELFARE_STATUS, "jp.bcl.welfare.WelfareStatus", ("welfare_status.avsc",)),
    )
}


@cache
def expanded_schema(contract: Contract) -> dict[str, Any]:
    """The contract as one self-contained schema (named types inlined), with docs and defaults."""
    parsed = fastavro.schema.load_schema_ordered([str(SCHEMA_DIR / f) for f in contract.files], _write_hint=False)
    expanded = fastavro.schema.expand_schema(parsed)
    assert isinstance(expanded, dict)
    return expanded


def canonical_form(schema: dict[str, Any]) -> str:
    """Avro Parsing Canonical Form: two schemas with the same form read and write the same bytes."""
    return fastavro.schema.to_parsing_canonical_form(fastavro.schema.parse_schema(schema))


def schema_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, sort_keys=True)
