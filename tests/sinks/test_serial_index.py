"""A certificate serial belongs to at most one current record (domain.serial_holders), in the index the
materialiser's processes share (sinks.serial_index): real SQLite files, two connections as two processes."""

from __future__ import annotations

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
