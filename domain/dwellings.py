"""A dwelling (住家) of disaster support: one full address of the register (docs/domain.md §6.1, §6.2).

Damage is assessed per dwelling, and the residents registered at the same full address (prefecture, municipality,
town/丁目, block and number, building) live in it. Its id is derived from the address alone, so that the ledger
build, a CSV import and a survey name the same dwelling without a lookup table. It is derived from an address:
treat it as personal data (never in logs)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

# The parts of the register's Address record that make one address, in the order they are written.
ADDRESS_PARTS = ("prefecture", "municipality", "town", "block", "building")


def address_text(address: Mapping[str, Any]) -> str:
    """The address as written on a certificate: the parts run together, the building after a space."""
    text = f"{address['prefecture']}{address['municipality']}{address['town']}{address['block']}"
    building = address.get("building")
    return f"{text} {building}" if building else text


def dwelling_id(municipality_code: str, address: Mapping[str, Any]) -> str:
    """Stable id of the dwelling at `address` in the municipality: 24 hex digits of SHA-256 over the code and the
    address parts (separated by a character no part holds, so that moving text between parts changes the id)."""
    parts = [municipality_code, *((address.get(p) or "").strip() for p in ADDRESS_PARTS)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
