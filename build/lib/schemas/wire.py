"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body.

AvroSerde encodes one contract's records and decodes any registered writer version of it into the
current reader schema (Avro schema resolution)."""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro

from domain.errors import BclError
from schemas.contracts import Contract, expanded_schema
from schemas.registry import BaseSchemaRegistry

MAGIC = 0
HEADER = struct.Struct(">bI")


class WireFormatError(BclError):
    """The bytes are not a Confluent-framed Avro message."""


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + body


def schema_id_of(value: bytes | None) -> int:
    if value is None or len(value) < HEADER.size:
        raise WireFormatError(f"message of {0 if value is None else len(value)} bytes is too short for the header")
    magic, schema_id = HEADER.unpack_from(value)
    if magic != MAGIC:
        raise WireFormatError(f"magic byte is {magic}, expected {MAGIC}")
    return schema_id


class AvroSerde:
    def __init__(self, registry: BaseSchemaRegistry, contract: Contract) -> None:
        self.contract = contract
        self.registry = registry
        self.contract_schema = expanded_schema(contract)
        self.reader_schema = fastavro.parse_schema(self.contract_schema)
        self.schema_id = registry.id_for(contract.subject, self.contract_schema)
        self._writers: dict[int, Any] = {self.schema_id: self.reader_schema}

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(HEADER.pack(MAGIC, self.schema_id))
        fastavro.schemaless_writer(buf, self.reader_schema, record)
        return buf.getvalue()

    def writer_schema(self, schema_id: int) -> Any:
        """Parsed writer schema for an id (raises UnknownSchemaId)."""
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._writers[schema_id] = fastavro.parse_schema(self.registry.schema_for(schema_id))
        return writer

    def decode(self, value: bytes) -> dict[str, Any]:
        return self.decode_with_id(value)[1]

    def decode_with_id(self, value: bytes) -> tuple[int, dict[str, Any]]:
        """The writer's schema id and the record in the current reader schema."""
        schema_id = schema_id_of(value)
        writer = self.writer_schema(schema_id)
        buf = io.BytesIO(value)
        buf.seek(HEADER.size)
        reader = None if writer is self.reader_schema else self.reader_schema
        record = fastavro.schemaless_reader(buf, writer, reader)
        if buf.tell() != len(value):
            raise WireFormatError(f"{len(value) - buf.tell()} bytes left over after the record")
        assert isinstance(record, dict)
        return schema_id, record
