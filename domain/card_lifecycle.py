"""What a register change means for the JPKI certificates of one resident (docs/domain.md §2.2, §4).

The register carries, per resident, the serials of the current user-authentication certificates
(`jpki_certificates`). A change compares the list before and after it and decides which
certificates the PKI must issue (serials new to the resident) and which it must revoke, and why.

Revocation reasons are the symbols of the Revocation contract (schemas/avro/revocation.avsc):

| change                                     | certificates revoked           | reason        |
|--------------------------------------------|--------------------------------|---------------|
| death (消除事由 DEATH)                      | all, before and after          | DEATH         |
| emigration (消除事由 EMIGRATION, 国外転出)   | all, before and after          | MOVED_ABROAD  |
| other deletion (消除事由 OTHER, 職権消除)     | all, before and after          | CARD_RETURNED |
| record removed altogether (RECORD_REMOVED) | all the record had             | CARD_RETURNED |
| CARD_RENEWED / CARD_ISSUED                 | those no longer listed         | RENEWAL       |
| CARD_REVOKED                               | those no longer listed         | LOST_CARD     |
| any other change                           | those no longer listed         | CARD_RETURNED |

A move to another municipality (転出, deletion reason MOVE_OUT) and a move within the municipality
keep the certificates valid: the card goes with the person.

Why CARD_REVOKED is LOST_CARD: the register event says that the certificates ended, not whether
the card was lost (紛失) or handed back (返納). LOST_CARD (keyCompromise on the CRL) is the only
reason that tells a relying party the key may be in other hands; marking a returned card's
certificate as compromised costs nothing (it is dead either way), marking a lost card's as merely
returned would hide a possible compromise. When the contract carries the reason, use it here.

Why the other deletions and removals are CARD_RETURNED: the certificate ends because the person no
longer holds a registration it can be tied to (cessationOfOperation); nothing suggests the key left
the card. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cryptography import x509

from domain.japan_time import JST

# A card's user-authentication certificate is valid for five years from the (Japan-time) day of issue.
CARD_VALIDITY_YEARS = 5



class RevocationReason(StrEnum):
    """Why a JPKI user certificate was revoked, in the register's terms: the symbols of the Revocation
    contract (schemas/avro/revocation.avsc), each with its RFC 5280 reason code on the CRL and in OCSP."""

    LOST_CARD = "LOST_CARD"
    CARD_RETURNED = "CARD_RETURNED"
    DEATH = "DEATH"
    MOVED_ABROAD = "MOVED_ABROAD"
    RENEWAL = "RENEWAL"

    @property
    def rfc5280(self) -> x509.ReasonFlags:
        return RFC5280_REASONS[self]


RFC5280_REASONS: Mapping[RevocationReason, x509.ReasonFlags] = MappingProxyType({
    RevocationReason.LOST_CARD: x509.ReasonFlags.key_compromise,
    RevocationReason.CARD_RETURNED: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.DEATH: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.MOVED_ABROAD: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.RENEWAL: x509.ReasonFlags.superseded,
})

_ENDS_ALL: Mapping[str, RevocationReason] = {
    "DEATH": RevocationReason.DEATH, "EMIGRATION": RevocationReason.MOVED_ABROAD,
    "OTHER": RevocationReason.CARD_RETURNED,
}
_DROPPED: Mapping[str, RevocationReason] = {
    "CARD_RENEWED": RevocationReason.RENEWAL, "CARD_ISSUED": RevocationReason.RENEWAL,
    "CARD_REVOKED": RevocationReason.LOST_CARD,
}


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def card_validity_days(issued_on: date) -> tuple[date, date]:
    """The first and last day of a card certificate issued on `issued_on`: up to the day before the same
    date five years later."""
    return issued_on, add_years(issued_on, CARD_VALIDITY_YEARS) - dt.timedelta(days=1)


def validity_instants(first_day: date, last_day: date) -> tuple[dt.datetime, dt.datetime]:
    """Validity days as certificate times: from the start of the first day to the last second of the
    last day, Japan time (how the register's days and the certificate's notBefore/notAfter relate)."""
    start = dt.datetime.combine(first_day, dt.time(0, 0), tzinfo=JST)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=JST)
    return start, end - dt.timedelta(seconds=1)


def card_validity(issued_on: date) -> tuple[dt.datetime, dt.datetime]:
    """The validity of a card certificate issued on a (Japan-time) day, as certificate times."""
    return validity_instants(*card_validity_days(issued_on))


@dataclass(frozen=True)
class CertificateEntry:
    """One entry of Resident.jpki_certificates: serial (16 lower-case hex digits), CARD or SMARTPHONE,
    and the first and last day of validity."""

    serial: str
    kind: str
    not_before: date
    not_after: date

    @classmethod
    def from_record(cls, entry: Mapping[str, Any]) -> CertificateEntry:
        return cls(entry["serial"], entry["kind"], entry["not_before"], entry["not_after"])


@dataclass(frozen=True)
class CardActions:
    """What the PKI must do for one change: certificates to issue, (certificate, reason) to revoke."""

    issue: tuple[CertificateEntry, ...] = ()
    revoke: tuple[tuple[CertificateEntry, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.issue or self.revoke)


def entries(certificates: Iterable[Mapping[str, Any]] | None) -> tuple[CertificateEntry, ...]:
    """The entries of a jpki_certificates list (None, as on a removed record, is empty)."""
    return tuple(CertificateEntry.from_record(c) for c in certificates or ())


def card_actions(change_type: str, before: Sequence[CertificateEntry], after: Mapping[str, Any] | None
                 ) -> CardActions:
    """The certificate actions of a change, given the resident's certificates before it and the record
    after it (None when the record is removed altogether)."""
    if after is None:
        return CardActions(revoke=tuple((c, RevocationReason.CARD_RETURNED) for c in _unique(before)))
    now = entries(after.get("jpki_certificates"))
    if after.get("status") == "DELETED":
        reason = _ENDS_ALL.get(after.get("deletion_reason") or "OTHER")
        if reason is not None:
            return CardActions(revoke=tuple((c, reason) for c in _unique([*before, *now])))
    current = {c.serial for c in now}
    known = {c.serial for c in before}
    dropped = _DROPPED.get(change_type, RevocationReason.CARD_RETURNED)
    return CardActions(
        issue=tuple(c for c in _unique(now) if c.serial not in known),
        revoke=tuple((c, dropped) for c in _unique(before) if c.serial not in current),
    )


def _unique(certificates: Iterable[CertificateEntry]) -> list[CertificateEntry]:
    seen: set[str] = set()
    out = []
    for c in certificates:
        if c.serial not in seen:
            seen.add(c.serial)
            out.append(c)
    return out
