"""The batch decoder gives exactly what fastavro gives, and refuses any batch with a malformed body."""

from __future__ import annotations

import io

import fastavro
import pytest

from schemas.arrow_decode import ArrowBatchDecoder
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import HEADER, AvroSerde
from tests.factories import make_change, make_resident


@pytest.fixture(scope="module")
def serde() -> AvroSerde:
    return AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.register.diffs"])


@pytest.fixture(scope="module")
def bodies(serde: AvroSerde) -> list[bytes]:
    seal = {"registration_number": "0001", "registered_on": make_resident()["birth_date"], "status": "ABOLISHED",
            "impression_png": b"\x89PNG..."}
    tax = [{"fiscal_year": 2026, "income_yen": 1, "taxable_income_yen": 0, "tax_yen": 0, "tax_exempt": True,
            "paid_yen": 0, "payment_status": "NOT_DUE"}]
    day = make_resident()["birth_date"]
    jpki = [{"serial": "00ff", "kind": "SMARTPHONE", "not_before": day, "not_after": day}]
    deceased = make_resident(n=2, seal=seal, tax_records=tax, jpki_certificates=jpki, sex="FEMALE", status="DELETED",
                             deletion_reason="DEATH", deleted_on=day)
    changes = [
        make_change(1, make_resident(n=1)),
        make_change(2, deceased, change_type="DEATH"),
        make_change(3, None, resident_code="00000000003", change_type="RECORD_REMOVED"),
        make_change(4, make_resident(n=4, address={**make_resident()["address"], "building": "コーポ101"})),
    ]
    return [serde.encode(c)[HEADER.size:] for c in changes]


def test_batch_equals_fastavro(serde: AvroSerde, bodies: list[bytes]) -> None:
    table = ArrowBatchDecoder(serde.contract_schema).decode(bodies)
    assert table is not None
    expected = [fastavro.schemaless_reader(io.BytesIO(b), serde.reader_schema, None) for b in bodies]
    assert table.to_pylist() == expected


@pytest.mark.parametrize("damage", ["truncated", "extended", "garbage", "enum out of range"])
def test_any_malformed_body_refuses_the_batch(serde: AvroSerde, bodies: list[bytes], damage: str) -> None:
    bad = {
        "truncated": bodies[1][:-3],
        "extended": bodies[1] + b"\x02\x00",
        "garbage": b"\x07not avro at all",
        # change_type is the 5th field: after event_id (37 bytes), municipality (7), resident code (12), sequence (1)
        "enum out of range": bodies[0][:57] + b"\x7e" + bodies[0][58:],
    }[damage]
    decoder = ArrowBatchDecoder(serde.contract_schema)
    assert decoder.decode([bodies[0], bad, bodies[2]]) is None
    assert decoder.decode([bodies[0], bodies[2], bad]) is None  # also as the last body of the batch
