"""Errors of the synthetic register and its change simulator."""

from __future__ import annotations

from schemas.errors import BclError


class RegisterError(BclError):
    """Something is wrong with building or simulating a synthetic register."""


class ReferenceDataError(RegisterError):
    """The reference data (municipalities, towns, names) is missing or malformed."""


class UnknownMunicipalityError(RegisterError):
    """A municipality code that is not in the reference data (or has no residents)."""
