"""Codes and check digits of the resident register (DOMAIN.md 2.1)."""

from __future__ import annotations


def municipality_check_digit(first_five: str) -> int:
    """全国地方公共団体コード: s = 6·d1 + 5·d2 + 4·d3 + 3·d4 + 2·d5; check = (11 − s mod 11) mod 10."""
    if len(first_five) != 5 or not first_five.isdigit():
        raise ValueError(f"a municipality code body is 5 digits, got {first_five!r}")
    s = sum(w * int(d) for w, d in zip((6, 5, 4, 3, 2), first_five, strict=True))
    return (11 - s % 11) % 10


def is_valid_municipality_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit() and municipality_check_digit(code[:5]) == int(code[5])


# Q(n) for n = 1..11, P(n) counted from the right of the first eleven digits.
_INDIVIDUAL_WEIGHTS = tuple(n + 1 if n <= 6 else n - 5 for n in range(1, 12))


def individual_number_check_digit(first_eleven: str) -> int:
    """個人番号: r = Σ P(n)·Q(n) mod 11 with P(1) the 11th digit; check = 0 if r ≤ 1 else 11 − r."""
    if len(first_eleven) != 11 or not first_eleven.isdigit():
        raise ValueError(f"an individual number body is 11 digits, got {first_eleven!r}")
    r = sum(int(d) * q for d, q in zip(reversed(first_eleven), _INDIVIDUAL_WEIGHTS, strict=True)) % 11
    return 0 if r <= 1 else 11 - r


def is_valid_individual_number(number: str) -> bool:
    return (
        len(number) == 12 and number.isdigit() and individual_number_check_digit(number[:11]) == int(number[11])
    )


def is_valid_resident_code(code: str) -> bool:
    """住民票コード: 11 digits (its check digit algorithm is not public; only the form is checked)."""
    return len(code) == 11 and code.isdigit()
