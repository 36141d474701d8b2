"""Arrow types for Avro schemas, so snapshots keep the contract's structure (nested records stay structs)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bytes": pa.binary(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}
_LOGICAL: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
}


def arrow_type(avro_type: Any, named: dict[str, pa.DataType] | None = None) -> pa.DataType:
    named = {} if named is None else named
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type]
        return named[avro_type]
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ValueError(f"only [null, T] unions map to Arrow, got {avro_type}")
        return arrow_type(branches[0], named)
    logical = avro_type.get("logicalType")
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = avro_type["type"]
    if kind == "record":
        # Nested fields stay nullable in Arrow: the children of a null struct (an absent seal) are null.
        t = pa.struct([pa.field(f["name"], arrow_type(f["type"], named)) for f in avro_type["fields"]])
    elif kind == "enum":
        t = pa.string()
    elif kind == "array":
        t = pa.list_(arrow_type(avro_type["items"], named))
    else:
        return arrow_type(kind, named)
    if "name" in avro_type:
        named[avro_type["name"]] = t
        if "namespace" in avro_type:
            named[f"{avro_type['namespace']}.{avro_type['name']}"] = t
    return t


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


def arrow_schema(record: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of an Avro record's fields."""
    named: dict[str, pa.DataType] = {}
    return pa.schema([pa.field(f["name"], arrow_type(f["type"], named), nullable=_nullable(f["type"]))
                      for f in record["fields"]])
