"""Codes and check digits of the resident register (docs/domain.md §2.1)."""

from __future__ import annotations


def _is_ascii_digits(s: str, length: int) -> bool:
    # str.isdigit() alone would accept other scripts' digits (e.g. "٣"); codes are ASCII.
    return len(s) == length and s.isascii() and s.isdigit()


def municipality_check_digit(first_five: str) -> int:
    """全国地方公共団体コード: s = 6·d1 + 5·d2 + 4·d3 + 3·d4 + 2·d5; check = (11 − s mod 11) mod 10."""
    if not _is_ascii_digits(first_five, 5):
        raise ValueError(f"a municipality code body is 5 digits, got {first_five!r}")
    s = sum(w * int(d) for w, d in zip((6, 5, 4, 3, 2), first_five, strict=True))
    return (11 - s % 11) % 10


def is_valid_municipality_code(code: str) -> bool:
    return _is_ascii_digits(code, 6) and municipality_check_digit(code[:5]) == int(code[5])


# Q(n) for n = 1..11, P(n) counted from the right of the first eleven digits.
_INDIVIDUAL_WEIGHTS = tuple(n + 1 if n <= 6 else n - 5 for n in range(1, 12))


def individual_number_check_digit(first_eleven: str) -> int:
    """個人番号: r = Σ P(n)·Q(n) mod 11 with P(1) the 11th digit; check = 0 if r ≤ 1 else 11 − r."""
    if not _is_ascii_digits(first_eleven, 11):
        raise ValueError(f"an individual number body is 11 digits, got {first_eleven!r}")
    r = sum(int(d) * q for d, q in zip(reversed(first_eleven), _INDIVIDUAL_WEIGHTS, strict=True)) % 11
    return 0 if r <= 1 else 11 - r


def is_valid_individual_number(number: str) -> bool:
    return _is_ascii_digits(number, 12) and individual_number_check_digit(number[:11]) == int(number[11])


def is_valid_resident_code(code: str) -> bool:
    """住民票コード: 11 digits (its check digit algorithm is not public; only the form is checked)."""
    return _is_ascii_digits(code, 11)


def valid_individual_numbers(numbers: list[str | None]) -> list[bool]:
    """is_valid_individual_number over a batch, vectorised (None counts as invalid)."""
    import numpy as np

    n = len(numbers)
    if n == 0:
        return []
    raw = np.array([s.encode() if s is not None and len(s) == 12 and s.isascii() else b"" for s in numbers],
                   dtype="S12")
    digits = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(n, 12).astype(np.int64) - ord("0")
    well_formed = ((digits >= 0) & (digits <= 9)).all(axis=1)
    # digits[:, 10] is P(1), the 11th digit; Q(n) for n = 1..11 applied from the right.
    weights = np.array(_INDIVIDUAL_WEIGHTS[::-1], dtype=np.int64)
    r = (digits[:, :11] * weights).sum(axis=1) % 11
    check = np.where(r <= 1, 0, 11 - r)
    return list(well_formed & (check == digits[:, 11]))
