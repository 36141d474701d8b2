"""The number of people in a household, as the support rules of docs/domain.md §6.4 take it: a whole number
from 1 (a one-person household, 単身世帯) up."""

from __future__ import annotations

from domain.errors import InvalidArgumentError


def check_household_size(size: int, argument: str = "household_size") -> int:
    """`size` itself when it is a household size; refused naming `argument` otherwise."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidArgumentError(argument, f"must be a whole number of people, got {size!r}")
    if size < 1:
        raise InvalidArgumentError(argument, f"must be at least 1 (the people of the household), got {size}")
    return size
