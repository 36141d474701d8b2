"""A certificate serial belongs to at most one current record (domain.serial_holders)."""

from __future__ import annotations

from domain.serial_holders import SerialHolders

A, B = ("302066", "00000000001"), ("045811", "00000000001")


def test_a_serial_of_another_current_record_is_refused_without_naming_it() -> None:
    holders = SerialHolders.from_current([(*A, ["000000000000abcd"])])
    rejection = holders.conflict(B, True, ["000000000000abcd"])
    assert rejection is not None and rejection.code == "SERIAL_IN_USE"
    assert "abcd" not in rejection.reason and "302066" in rejection.reason
    assert holders.conflict(A, True, ["000000000000abcd", "000000000000abce"]) is None  # its own serial
    assert holders.conflict(B, False, ["000000000000abcd"]) is None  # a deleted record holds nothing


def test_a_record_that_is_no_longer_current_frees_its_serials() -> None:
    holders = SerialHolders.from_current([(*A, ["000000000000abcd", "000000000000abce"])])
    holders.update(A, True, ["000000000000abce"])  # the card renewed: abcd left
    assert holders.conflict(B, True, ["000000000000abcd"]) is None
    assert holders.conflict(B, True, ["000000000000abce"]) is not None
    holders.update(A, False, ["000000000000abce"])  # moved out
    assert holders.conflict(B, True, ["000000000000abce"]) is None and len(holders) == 0
    holders.update(B, True, ["000000000000abce"])
    assert holders.conflict(A, True, ["000000000000abce"]) is not None
