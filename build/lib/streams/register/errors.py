"""Errors of the synthetic register and its change simulator."""

from __future__ import annotations

from domain.errors import BclError


class RegisterError(BclError):
    """Something is wrong with building or simulating a synthetic register."""

