"""The limits of a ResidentChange are stated once (domain.register_validation); the contracts' docs and
docs/domain.md repeat them for readers, and this keeps them in step."""

from __future__ import annotations

import json
from pathlib import Path

from domain.register_validation import (
    EARLIEST_EVENT_TIME,
    ITEM_LIMITS,
    MAX_EVENT_AHEAD,
    MAX_SEAL_IMAGE_BYTES,
    MAX_SEQUENCE_JUMP,
    SEAL_IMAGE,
    TEXT_LIMITS,
)
from schemas.contracts import SCHEMA_DIR

DOMAIN_MD = Path(__file__).resolve().parents[2] / "docs" / "domain.md"


def _docs(schema: object, path: str = "") -> dict[str, str]:
    """Field path → doc of every field of a schema (nested records with dots)."""
    out: dict[str, str] = {}
    if isinstance(schema, dict):
        for f in schema.get("fields", []):
            name = f"{path}{f['name']}"
            out[name] = f.get("doc", "")
            types = f["type"] if isinstance(f["type"], list) else [f["type"]]
            for t in types:
                if isinstance(t, dict) and t.get("type") == "record":
                    out |= _docs(t, name + ".")
    return out


def test_the_contracts_state_the_limits() -> None:
    resident = _docs(json.loads((SCHEMA_DIR / "resident.avsc").read_text()))
    for path, limit in TEXT_LIMITS.items():
        assert f"At most {limit} characters." in resident[path], path
    assert f"At most {MAX_SEAL_IMAGE_BYTES} bytes." in resident[SEAL_IMAGE]
    for name, limit in ITEM_LIMITS.items():
        assert f"At most {limit} items." in resident[name], name
    change = _docs(json.loads((SCHEMA_DIR / "resident_change.avsc").read_text()))
    assert f"{EARLIEST_EVENT_TIME:%Y-%m-%d}" in change["event_time"]
    assert f"{MAX_EVENT_AHEAD.days} days" in change["event_time"]
    assert f"At most {MAX_SEQUENCE_JUMP} above" in change["sequence"]


def test_docs_domain_states_the_limits() -> None:
    text = DOMAIN_MD.read_text()
    assert f"{MAX_SEQUENCE_JUMP:,}" in text and f"{EARLIEST_EVENT_TIME:%Y-%m-%d}" in text
    assert f"{MAX_EVENT_AHEAD.days} days" in text and f"{MAX_SEAL_IMAGE_BYTES:,} bytes" in text
    for limit in {*TEXT_LIMITS.values(), *ITEM_LIMITS.values()}:
        assert f" {limit}" in text, limit
