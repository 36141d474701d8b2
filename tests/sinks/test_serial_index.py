"""A certificate serial belongs to at most one current record (domain.serial_holders), in the index the
materialiser's processes share (sinks.serial_index): real SQLite files, two connections as two processes."""

from __future__ import annotations

import random
from pathlib import Path

from sinks.serial_index import SerialIndex

A, B = ("302066", "00000000001"), ("045811", "00000000001")


def test_a_serial_of_another_current_record_is_refused_without_naming_it(tmp_path: Path) -> None:
    holders = SerialIndex(tmp_path / "s.sqlite")
    holders.rebuild([(*A, ["000000000000abcd"])])
    rejection = holders.claim(B, True, ["000000000000abcd"])
    assert rejection is not None and rejection.code == "SERIAL_IN_USE"
    assert "abcd" not in rejection.reason and "302066" in rejection.reason
    assert holders.claim(A, True, ["000000000000abcd", "000000000000abce"]) is None  # its own serial
    assert holders.claim(B, False, ["000000000000abcd"]) is None  # a deleted record holds nothing


def test_a_record_that_is_no_longer_current_frees_its_serials_for_another_process(tmp_path: Path) -> None:
    one, other = SerialIndex(tmp_path / "s.sqlite"), SerialIndex(tmp_path / "s.sqlite")
    one.rebuild([(*A, ["000000000000abcd", "000000000000abce"])])
    assert other.built
    with one.batch():
        assert one.claim(A, True, ["000000000000abce"]) is None  # the card renewed: abcd left
    assert other.claim(B, True, ["000000000000abcd"]) is None
    assert other.claim(B, True, ["000000000000abce"]) is not None
    assert one.claim(A, False, []) is None  # moved out
    assert other.claim(B, True, ["000000000000abce"]) is None and len(other) == 1
    assert one.claim(A, True, ["000000000000abce"]) is not None
    assert one.holding() == {B}
    other.forget()
    assert not one.built


def test_a_history_that_lists_a_serial_twice_keeps_its_first_holder(tmp_path: Path) -> None:
    holders = SerialIndex(tmp_path / "s.sqlite")
    holders.rebuild([(*A, ["000000000000abcd"]), (*B, ["000000000000abcd"])])
    assert holders.claim(B, True, ["000000000000abcd"]) is not None
    assert holders.claim(A, True, ["000000000000abcd"]) is None


def _serial(n: int) -> str:
    return f"{n:016x}"


def test_a_batch_of_claims_reads_and_writes_the_index_in_a_few_statements(tmp_path: Path) -> None:
    """The CPU of a full load (issue 12): the holders of a batch's serials read together, its changes written
    together (executemany), not two or three statements a claim. Still exact: a serial another record holds is
    refused, whether the index or the batch gave it to that record."""
    holders = SerialIndex(tmp_path / "s.sqlite")
    holders.rebuild([("302066", f"{n:011d}", [_serial(n)]) for n in range(2_000)])
    statements: list[str] = []
    holders._con.set_trace_callback(statements.append)  # the index's own connection: what it asks SQLite
    claims = [(("045811", f"{n:011d}"), [_serial(10_000 + n), _serial(20_000 + n)]) for n in range(1_000)]
    claims.append((("045811", "99999999999"), [_serial(5)]))  # held in the index by 302066's record 5
    claims.append((("045811", "99999999998"), [_serial(10_007)]))  # claimed earlier in this batch
    with holders.batch():
        holders.expect(serial for _, serials in claims for serial in serials)
        results = [holders.claim(record, True, serials, holds=False) for record, serials in claims]
    assert all(r is None for r in results[:-2])
    assert [r.code for r in results[-2:] if r is not None] == ["SERIAL_IN_USE", "SERIAL_IN_USE"]
    reads = [s for s in statements if s.startswith("SELECT")]
    assert len(reads) == 3  # 2,002 serials: in chunks of 900 (SQLite's trace shows each executemany row apart)
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert len(holders) == 2_000 + 2_000


def test_claims_in_one_batch_decide_as_the_same_claims_one_by_one(tmp_path: Path) -> None:
    """The batch's claims are decided on what it read, kept up to date by its own claims: the same answers and
    the same index as each claim in a transaction of its own, including releases and serials freed in the batch."""
    rnd = random.Random(12)
    records = [(m, f"{n:011d}") for m in ("302066", "045811") for n in range(40)]
    start = [(*r, [_serial(i)]) for i, r in enumerate(records[:30])]
    batched, alone = SerialIndex(tmp_path / "a.sqlite"), SerialIndex(tmp_path / "b.sqlite")
    batched.rebuild(start)
    alone.rebuild(start)
    for _ in range(20):
        claims = [(rnd.choice(records), rnd.random() < 0.8,
                   [_serial(rnd.randrange(60)) for _ in range(rnd.randrange(3))], rnd.random() < 0.7)
                  for _ in range(50)]
        with batched.batch():
            batched.expect(serial for _, current, serials, _ in claims if current for serial in serials)
            got = [batched.claim(record, current, serials, holds=holds) for record, current, serials, holds in claims]
        expected = [alone.claim(record, current, serials, holds=holds) for record, current, serials, holds in claims]
        assert [r and r.code for r in got] == [r and r.code for r in expected]
        assert _rows(batched) == _rows(alone)


def _rows(index: SerialIndex) -> list[tuple[str, str, str]]:
    return sorted(index._con.execute("SELECT * FROM holders").fetchall())
