"""The batch decoder gives exactly what fastavro gives, and refuses any batch with a malformed body, even
when the bodies of two malformed messages make up for each other."""

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
    decoded = ArrowBatchDecoder(serde.contract_schema).decode(bodies)
    assert decoded is not None
    expected = [fastavro.schemaless_reader(io.BytesIO(b), serde.reader_schema, None) for b in bodies]
    assert decoded.table.to_pylist() == expected


def test_field_starts_are_where_fastavro_reads_each_field(serde: AvroSerde, bodies: list[bytes]) -> None:
    decoded = ArrowBatchDecoder(serde.contract_schema).decode(bodies)
    assert decoded is not None
    residents = AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.residents"])
    for body, start in zip(bodies, decoded.field_start("after").tolist(), strict=True):
        record = fastavro.schemaless_reader(io.BytesIO(body), serde.reader_schema, None)["after"]
        # The union's branch byte, then the Resident to the message's last byte.
        expected = b"\x00" if record is None else b"\x02" + residents.encode(record)[HEADER.size:]
        assert body[start:] == expected


@pytest.mark.parametrize("cut", [1, 40, 100])
def test_two_bodies_that_make_up_for_each_other_are_refused(serde: AvroSerde, bodies: list[bytes], cut: int) -> None:
    """A = R1 without its last bytes, B = those bytes + R2: joined they read as R1 and R2, canary intact."""
    a, b = bodies[0][:-cut], bodies[0][-cut:] + bodies[3]
    decoder = ArrowBatchDecoder(serde.contract_schema)
    assert decoder.decode([a, b]) is None
    assert decoder.decode([bodies[1], a, b, bodies[2]]) is None


def test_a_valid_but_not_canonical_encoding_is_left_to_fastavro(serde: AvroSerde, bodies: list[bytes]) -> None:
    """A sequence number written in two bytes where one suffices (0x82 0x00 = 1) is valid Avro, but the
    batch cannot prove its boundaries: the batch is refused, and fastavro reads the message alone."""
    at = 37 + 7 + 12  # after event_id, municipality code and resident code
    assert bodies[0][at] == 2  # sequence 1, zig-zag
    long_form = bodies[0][:at] + b"\x82\x00" + bodies[0][at + 1:]
    assert fastavro.schemaless_reader(io.BytesIO(long_form), serde.reader_schema, None)["sequence"] == 1
    assert ArrowBatchDecoder(serde.contract_schema).decode([long_form, bodies[1]]) is None


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
