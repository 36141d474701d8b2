"""The contracts and their registry: every schema is locked, every change is BACKWARD compatible
with the committed previous version, and the wire format frames what the registry assigned."""

from __future__ import annotations

import copy
import datetime as dt
import io
import itertools
import json
from pathlib import Path

import fastavro
import pytest

import schemas.registry as registry_module
from schemas.contracts import CONTRACTS, SCHEMA_DIR, canonical_form, expanded_schema
from schemas.registry import (
    ConfluentSchemaRegistry,
    FileSchemaRegistry,
    IncompatibleSchema,
    SchemaRegistryError,
    UnknownSchemaId,
    backward_incompatibilities,
)
from schemas.wire import AvroSerde, WireFormatError, frame, schema_id_of
from tests.factories import make_change, make_resident


@pytest.mark.parametrize("contract", list(CONTRACTS.values()), ids=lambda c: c.subject)
def test_every_contract_is_locked_and_backward_compatible(contract) -> None:  # type: ignore[no-untyped-def]
    registry = FileSchemaRegistry()
    current = expanded_schema(contract)
    latest = registry.latest(contract.subject)
    assert latest is not None and canonical_form(latest.schema) == canonical_form(current), (
        f"{contract.subject} changed: run `bcl schemas lock` and commit schemas/registry.lock.json"
    )
    versions = sorted((v for v in registry._versions if v.subject == contract.subject), key=lambda v: v.version)
    for older, newer in itertools.pairwise(versions):
        assert backward_incompatibilities(newer.schema, older.schema) == [], f"{newer.subject} v{newer.version}"


def test_every_field_has_a_doc() -> None:
    def fields(schema):  # type: ignore[no-untyped-def]
        if isinstance(schema, dict):
            for f in schema.get("fields", []):
                yield f
                yield from fields(f["type"])
            yield from fields(schema.get("items"))
        elif isinstance(schema, list):
            for s in schema:
                yield from fields(s)

    for path in SCHEMA_DIR.glob("*.avsc"):
        undocumented = [f["name"] for f in fields(json.loads(path.read_text())) if not f.get("doc")]
        assert not undocumented, f"{path.name}: {undocumented}"


def _lock_copy(tmp_path: Path) -> Path:
    lock = tmp_path / "registry.lock.json"
    lock.write_text(FileSchemaRegistry().lock_file.read_text())
    return lock


def test_an_incompatible_change_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contract = CONTRACTS["bcl.dlq"]
    changed = copy.deepcopy(expanded_schema(contract))
    changed["fields"].append({"name": "severity", "type": "int", "doc": "a new field without a default"})
    assert any("severity" in p for p in backward_incompatibilities(changed, expanded_schema(contract)))

    registry = FileSchemaRegistry(_lock_copy(tmp_path))
    monkeypatch.setattr(registry_module, "expanded_schema", lambda c: changed)
    with pytest.raises(IncompatibleSchema, match="severity"):
        registry.lock([contract])
    assert registry.latest(contract.subject).version == 1  # type: ignore[union-attr]


def test_a_compatible_change_gets_a_new_version_that_reads_old_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = CONTRACTS["bcl.dlq"]
    v1 = expanded_schema(contract)
    changed = copy.deepcopy(v1)
    changed["fields"].append({"name": "severity", "type": "int", "default": 0, "doc": "with a default: compatible"})
    registry = FileSchemaRegistry(_lock_copy(tmp_path))
    monkeypatch.setattr(registry_module, "expanded_schema", lambda c: changed)
    [change] = registry.lock([contract])
    assert "version 2" in change

    reloaded = FileSchemaRegistry(registry.lock_file)
    old_id, new_id = reloaded.id_for(contract.subject, v1), reloaded.id_for(contract.subject, changed)
    assert new_id != old_id
    letter = {"processor": "p", "topic": "t", "partition": 0, "offset": 1, "key": None, "value": b"x",
              "reason_code": "MALFORMED", "reason": "r", "failed_at": dt.datetime(2026, 11, 21, tzinfo=dt.UTC)}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(reloaded.schema_for(old_id)), letter)
    body.seek(0)
    read = fastavro.schemaless_reader(body, fastavro.parse_schema(reloaded.schema_for(old_id)),
                                      fastavro.parse_schema(reloaded.schema_for(new_id)))
    assert read == {**letter, "severity": 0}


def test_unregistered_schema_tells_what_to_do() -> None:
    with pytest.raises(SchemaRegistryError, match="bcl schemas lock"):
        FileSchemaRegistry().id_for("bcl.dlq-value", {"type": "record", "name": "X", "fields": []})


def test_wire_format_roundtrip_and_errors() -> None:
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.register.diffs"])
    change = make_change(1, make_resident())
    value = serde.encode(change)
    assert value[0] == 0 and schema_id_of(value) == serde.schema_id
    assert serde.decode(value) == change
    with pytest.raises(UnknownSchemaId):
        serde.decode(frame(9999, value[5:]))
    with pytest.raises(WireFormatError, match="magic"):
        serde.decode(b"\x01" + value[1:])
    with pytest.raises(WireFormatError, match="too short"):
        schema_id_of(b"\x00\x00")
    with pytest.raises(WireFormatError, match="left over"):
        serde.decode(value + b"\x00")


def test_confluent_registry_client_path() -> None:
    # confluent-kafka's own in-memory registry (mock:// URL): a real registry server cannot run here.
    registry = ConfluentSchemaRegistry("mock://bcl-test")
    serde = AvroSerde(registry, CONTRACTS["bcl.register.diffs"])
    change = make_change(3, make_resident(n=3))
    assert serde.decode(serde.encode(change)) == change
    assert registry.id_for("bcl.register.diffs-value", serde.contract_schema) == serde.schema_id
    with pytest.raises(UnknownSchemaId):
        registry.schema_for(424242)
