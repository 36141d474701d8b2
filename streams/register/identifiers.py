"""Identifiers of the synthetic register, derived deterministically from (municipality, counter).

Each scheme maps a number unique nationally (the municipality's rank in the code-ordered reference
list combined with a per-municipality counter) through an affine bijection of its number space, so
the identifiers look scattered like real ones but never collide, nationally, across runs and
between the initial register and the residents the simulator adds later.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.certificate_serial import format_serial
from domain.codes import individual_number_check_digit

# Per-municipality counters stay below this; 10**7 exceeds the largest register (横浜市, 3.8 million).
COUNTER_SPACE = 10**7
_ELEVEN_DIGITS = 10**11
# Multipliers coprime to the modulus make x -> (a·x + b) mod m a bijection.
_RESIDENT_CODE_A, _RESIDENT_CODE_B = 7_919_641, 31_415_926_535
_INDIVIDUAL_A, _INDIVIDUAL_B = 3_367_900_313, 27_182_818_284
_SERIAL_SPACE = 1 << 64
_SERIAL_A, _SERIAL_B = 0x9E3779B97F4A7C15, 0x2545F4914F6CDD1D
_SERIAL_COUNTER_BITS = 40


@dataclass(frozen=True)
class Identifiers:
    """The identifier schemes of one municipality; `rank` is its position in the reference list."""

    rank: int

    def _national(self, counter: int) -> int:
        if not 0 <= counter < COUNTER_SPACE:
            raise ValueError(f"identifier counter {counter} outside 0..{COUNTER_SPACE - 1}")
        return self.rank * COUNTER_SPACE + counter

    def resident_code(self, counter: int) -> str:
        """住民票コード: 11 digits, unique nationally."""
        return f"{(_RESIDENT_CODE_A * self._national(counter) + _RESIDENT_CODE_B) % _ELEVEN_DIGITS:011d}"

    def individual_number(self, counter: int) -> str:
        """個人番号: 11 digits unique nationally plus the check digit of docs/domain.md §2.1."""
        body = f"{(_INDIVIDUAL_A * self._national(counter) + _INDIVIDUAL_B) % _ELEVEN_DIGITS:011d}"
        return body + str(individual_number_check_digit(body))

    def jpki_serial(self, counter: int) -> str:
        """Serial of a JPKI user certificate: 16 lower-case hex digits, unique nationally."""
        if not 0 <= counter < 1 << _SERIAL_COUNTER_BITS:
            raise ValueError(f"certificate counter {counter} out of range")
        national = (self.rank << _SERIAL_COUNTER_BITS) | counter
        return format_serial((_SERIAL_A * national + _SERIAL_B) % _SERIAL_SPACE)

    @staticmethod
    def household_number(counter: int) -> str:
        """世帯番号: 10 digits, unique within the municipality."""
        return f"{counter:010d}"

    @staticmethod
    def seal_number(counter: int) -> str:
        """印鑑登録番号: 8 digits, unique within the municipality."""
        return f"{counter:08d}"
