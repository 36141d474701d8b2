"""Schema registries: a Confluent-compatible one when a URL is configured, otherwise a
file-backed registry whose subject/version → id assignments are committed in registry.lock.json.

The file registry is read-only at run time: a schema that is not in the lock file is an error
telling the developer to run `bcl schemas lock`, which checks BACKWARD compatibility with the
previous version before adding the new one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import avro.schema
import fastavro
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from domain.errors import BclError
from schemas.contracts import CONTRACTS, Contract, canonical_form, expanded_schema, schema_json

LOCK_FILE = Path(__file__).resolve().parent / "registry.lock.json"


class SchemaRegistryError(BclError):
    pass


class UnknownSchemaId(SchemaRegistryError):
    pass


class IncompatibleSchema(SchemaRegistryError):
    pass


class BaseSchemaRegistry(Protocol):
    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        """The id under which this schema is registered for the subject."""
        ...

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        """The writer schema registered under this id (raises UnknownSchemaId)."""
        ...


def backward_incompatibilities(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """BACKWARD: a reader using the new schema can read data written with the old one."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        reader=avro.schema.parse(schema_json(new)), writer=avro.schema.parse(schema_json(old))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(result.messages) or ["incompatible"]


@dataclass
class _Version:
    subject: str
    version: int
    id: int
    schema: dict[str, Any]


class FileSchemaRegistry:
    def __init__(self, lock_file: Path = LOCK_FILE) -> None:
        self.lock_file = lock_file
        self._versions: list[_Version] = []
        if lock_file.exists():
            data = json.loads(lock_file.read_text(encoding="utf-8"))
            for subject, versions in data["subjects"].items():
                self._versions += [_Version(subject, v["version"], v["id"], v["schema"]) for v in versions]
        self._by_id = {v.id: v for v in self._versions}
        self._by_form = {(v.subject, canonical_form(v.schema)): v.id for v in self._versions}

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        try:
            return self._by_form[(subject, canonical_form(schema))]
        except KeyError:
            raise SchemaRegistryError(
                f"the schema for {subject} is not in {self.lock_file.name}: run `bcl schemas lock` and commit the file"
            ) from None

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        try:
            return self._by_id[schema_id].schema
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} is not registered") from None

    def latest(self, subject: str) -> _Version | None:
        versions = [v for v in self._versions if v.subject == subject]
        return max(versions, key=lambda v: v.version) if versions else None

    def lock(self, contracts: list[Contract] | None = None) -> list[str]:
        """Add a new version for every contract whose schema changed; refuse incompatible changes."""
        changes: list[str] = []
        for contract in contracts or list(CONTRACTS.values()):
            schema = expanded_schema(contract)
            if (contract.subject, canonical_form(schema)) in self._by_form:
                continue
            previous = self.latest(contract.subject)
            if previous is not None:
                problems = backward_incompatibilities(schema, previous.schema)
                if problems:
                    raise IncompatibleSchema(
                        f"{contract.subject}: the new schema cannot read version {previous.version}: "
                        + "; ".join(problems)
                    )
            new = _Version(
                contract.subject,
                previous.version + 1 if previous else 1,
                max(self._by_id, default=0) + 1,
                schema,
            )
            self._versions.append(new)
            self._by_id[new.id] = new
            self._by_form[(new.subject, canonical_form(schema))] = new.id
            changes.append(f"{new.subject} version {new.version} → id {new.id}")
        if changes:
            self._write()
        return changes

    def _write(self) -> None:
        subjects: dict[str, list[dict[str, Any]]] = {}
        for v in sorted(self._versions, key=lambda v: (v.subject, v.version)):
            subjects.setdefault(v.subject, []).append({"version": v.version, "id": v.id, "schema": v.schema})
        text = json.dumps({"subjects": subjects}, ensure_ascii=False, indent=1) + "\n"
        tmp = self.lock_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.lock_file)


class ConfluentSchemaRegistry:
    """A Confluent-compatible registry over HTTP (confluent-kafka's client; `mock://` URLs give its
    in-memory mock). Registration is idempotent: an existing identical schema returns its id."""

    def __init__(self, url: str) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._client = SchemaRegistryClient.new_client({"url": url})
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema

        key = (subject, canonical_form(schema))
        if key not in self._ids:
            self._ids[key] = self._client.register_schema(subject, Schema(schema_json(schema), "AVRO"))
        return self._ids[key]

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        from confluent_kafka.schema_registry.error import SchemaRegistryError as ClientError

        if schema_id not in self._schemas:
            try:
                self._schemas[schema_id] = json.loads(self._client.get_schema(schema_id).schema_str)
            except ClientError as exc:
                raise UnknownSchemaId(f"schema id {schema_id} is not registered: {exc}") from exc
        return self._schemas[schema_id]


def make_registry(url: str | None) -> BaseSchemaRegistry:
    return ConfluentSchemaRegistry(url) if url else FileSchemaRegistry()


def parse(schema: dict[str, Any]) -> Any:
    return fastavro.parse_schema(schema)
