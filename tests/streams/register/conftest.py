"""Fixtures of the synthetic register tests: the real reference data and font, the Avro contracts,
and factories for registers and simulators (small populations keep the suite fast)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas.contracts import SCHEMA_DIR
from streams.register.reference import ReferenceData, load_reference_data
from streams.register.simulator import ChangeRates, RegisterSimulator
from streams.register.synthetic import SyntheticRegister, build_register
from streams.settings import load_settings

SETAGAYA = "131121"  # has sample towns
AS_OF = date(2026, 3, 1)
START = datetime(2026, 2, 28, 15, 0, tzinfo=UTC)  # 2026-03-01 00:00 Japan time


@pytest.fixture(scope="session")
def as_of() -> date:
    """The date of the registers built by make_register (everything in them happened before)."""
    return AS_OF


@pytest.fixture(scope="session")
def start() -> datetime:
    """The full-load instant of the simulators made by make_simulator."""
    return START


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    return load_reference_data()


@pytest.fixture(scope="session")
def font_path() -> Path:
    return load_settings().mincho_font


@pytest.fixture(scope="session")
def schemas() -> dict[str, Any]:
    named: dict[str, Any] = {}
    resident = fastavro.schema.load_schema(SCHEMA_DIR / "resident.avsc", named_schemas=named)
    change = fastavro.schema.load_schema(SCHEMA_DIR / "resident_change.avsc", named_schemas=named)
    return {"resident": resident, "change": change}


@pytest.fixture(scope="session")
def encode(schemas: dict[str, Any]) -> Callable[[str, dict[str, Any]], bytes]:
    def _encode(kind: str, value: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schemas[kind], value)
        return out.getvalue()

    return _encode


@pytest.fixture(scope="session")
def make_register(reference: ReferenceData, font_path: Path) -> Callable[..., SyntheticRegister]:
    def _make(population: int = 1000, seed: int = 11, code: str = SETAGAYA, as_of: date = AS_OF) -> SyntheticRegister:
        return build_register(reference, code, seed=seed, as_of=as_of, font_path=font_path, population=population)

    return _make


@pytest.fixture(scope="session")
def register_5000(make_register: Callable[..., SyntheticRegister]) -> SyntheticRegister:
    return make_register(population=5000, seed=5)


@pytest.fixture(scope="session")
def make_simulator(reference: ReferenceData, font_path: Path) -> Callable[..., RegisterSimulator]:
    def _make(
        population: int = 1000,
        seed: int = 11,
        start: datetime = START,
        code: str = SETAGAYA,
        rates: ChangeRates | None = None,
    ) -> RegisterSimulator:
        return RegisterSimulator(
            reference, code, population=population, seed=seed, start=start, font_path=font_path, rates=rates
        )

    return _make
