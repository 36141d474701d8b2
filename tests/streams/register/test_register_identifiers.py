from __future__ import annotations

import re

import pytest

from domain.codes import is_valid_individual_number, is_valid_resident_code
from streams.register.identifiers import COUNTER_SPACE, Identifiers


def test_identifiers_are_unique_across_municipalities_and_counters() -> None:
    schemes = [Identifiers(rank) for rank in (0, 1, 917, 1911)]
    counters = [*range(2000), COUNTER_SPACE - 1]
    codes = [s.resident_code(c) for s in schemes for c in counters]
    numbers = [s.individual_number(c) for s in schemes for c in counters]
    serials = [s.jpki_serial(c) for s in schemes for c in counters]
    assert len(set(codes)) == len(codes)
    assert len(set(numbers)) == len(numbers)
    assert len(set(serials)) == len(serials)
    assert all(is_valid_resident_code(c) for c in codes)
    assert all(is_valid_individual_number(n) for n in numbers)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) for s in serials)


def test_counters_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        Identifiers(3).resident_code(COUNTER_SPACE)
    with pytest.raises(ValueError):
        Identifiers(3).individual_number(-1)


def test_household_and_seal_numbers_are_fixed_width() -> None:
    assert Identifiers.household_number(42) == "0000000042"
    assert Identifiers.seal_number(7) == "00000007"
