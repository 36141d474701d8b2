"""domain.certificate_serial: one serial format, in and out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.certificate_serial import SERIAL_HEX_DIGITS, format_serial, parse_serial, read_serial
from domain.errors import BclError, InvalidSerialError


@given(st.integers(min_value=1, max_value=16**SERIAL_HEX_DIGITS - 1))
def test_format_and_parse_round_trip(serial: int) -> None:
    text = format_serial(serial)
    assert len(text) == SERIAL_HEX_DIGITS and text == text.lower()
    assert parse_serial(text) == serial
    assert read_serial(text.upper()) == text  # a person may type it in upper case


def test_leading_zeros_are_kept() -> None:
    assert format_serial(0x123456789ABCDEF) == "0123456789abcdef"
    assert format_serial(0xAB) == "00000000000000ab"


def test_people_may_type_either_case_but_only_the_register_form_is_stored() -> None:
    assert read_serial(" 0123456789ABCDEF\n") == "0123456789abcdef"
    with pytest.raises(InvalidSerialError):
        parse_serial("0123456789ABCDEF")  # the stored form is lower case: internal code never sees another


@pytest.mark.parametrize("bad", ["", "123456789abcdef", "0123456789abcdef0", "0123456789abcdeg", "0x23456789abcdef",
                                 "0000000000000000"])
def test_bad_serials_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSerialError) as raised:
        read_serial(bad)
    assert isinstance(raised.value, BclError)
    with pytest.raises(InvalidSerialError):
        parse_serial(bad)
