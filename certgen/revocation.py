"""Revocations, the revocation registry and the CRL built from it. Pure: no files, no network.

Revocations arrive as `Revocation` events (schemas/avro/revocation.avsc, topic
bcl.jpki.revocations keyed by serial). The registry is the fold of those events; the daily CRL
and the OCSP answers are derived from it.

Why the reasons map to RFC 5280 codes the way they do (docs/domain.md §4, docs/card_protocol.md):

| domain reason            | event symbol  | RFC 5280 CRLReason       | why |
|--------------------------|---------------|--------------------------|-----|
| card lost (紛失)          | LOST_CARD     | keyCompromise (1)        | the private key may be in other hands |
| card returned (返納)      | CARD_RETURNED | cessationOfOperation (5) | no longer needed; key not compromised |
| holder died (死亡)        | DEATH         | cessationOfOperation (5) | the holder no longer exists |
| moved abroad (国外転出)    | MOVED_ABROAD  | cessationOfOperation (5) | JPKI ends with leaving the register |
| renewal (更新, the old one) | RENEWAL     | superseded (4)           | a new certificate replaces it |
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cryptography import x509

from certgen.authority import SIGNATURE_HASH, CertificateAuthority, require_aware
from certgen.errors import PkiError
from domain.card_lifecycle import RevocationReason
from domain.certificate_serial import format_serial, parse_serial

CRL_REFRESH = timedelta(hours=24)  # the daily CRL: nextUpdate = thisUpdate + 24 h


class RevocationStatus(StrEnum):
    """Status of a certificate as a revocation source reports it (RFC 6960 good/revoked/unknown)."""

    GOOD = "GOOD"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"  # not issued by this PKI


@dataclass(frozen=True)
class Revocation:
    """One revocation event: the certificate serial (16 lower-case hex digits), why, when, and the
    municipality that revoked it (None when not a municipal act, e.g. a renewal done centrally)."""

    serial: str
    reason: RevocationReason
    revoked_at: datetime
    municipality_code: str | None = None

    def __post_init__(self) -> None:
        parse_serial(self.serial)
        object.__setattr__(self, "reason", RevocationReason(self.reason))
        object.__setattr__(self, "revoked_at", require_aware(self.revoked_at, "revoked_at"))

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)


@dataclass(frozen=True)
class SerialStatus:
    """What the PKI knows about one serial: issued or not, and its revocation if any."""

    status: RevocationStatus
    revocation: Revocation | None = None


def merge_revocation(current: Revocation | None, incoming: Revocation) -> Revocation:
    """The revocation that stands when `incoming` arrives for a serial already at `current`.

    A revocation is final (RFC 5280 has no un-revoke except from certificateHold, which JPKI does
    not use), so the earliest one wins and replays or late duplicates change nothing; equal times
    keep the current one. This is the per-key fold of the compacted revocations topic.
    """
    if current is None:
        return incoming
    if incoming.serial != current.serial:
        raise PkiError(f"cannot merge revocations of different serials {current.serial} and {incoming.serial}")
    return incoming if incoming.revoked_at < current.revoked_at else current


class RevocationRegistry(Mapping[str, Revocation]):
    """An immutable serial → revocation map; `apply_revocation` returns a new one."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Revocation] | None = None) -> None:
        self._entries: Mapping[str, Revocation] = MappingProxyType(dict(entries or {}))

    def __getitem__(self, serial: str) -> Revocation:
        return self._entries[serial]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"RevocationRegistry({len(self)} revocations)"


def apply_revocation(registry: RevocationRegistry, revocation: Revocation) -> RevocationRegistry:
    """The registry after one revocation event (earliest revocation of a serial wins)."""
    merged = merge_revocation(registry.get(revocation.serial), revocation)
    if registry.get(revocation.serial) is merged:
        return registry
    entries = dict(registry)
    entries[revocation.serial] = merged
    return RevocationRegistry(entries)


def build_registry(revocations: Iterable[Revocation]) -> RevocationRegistry:
    """The registry from a stream of revocation events, in one pass."""
    entries: dict[str, Revocation] = {}
    for revocation in revocations:
        entries[revocation.serial] = merge_revocation(entries.get(revocation.serial), revocation)
    return RevocationRegistry(entries)


def build_crl(ca: CertificateAuthority, revocations: Iterable[Revocation], this_update: datetime,
              crl_number: int, next_update: datetime | None = None) -> x509.CertificateRevocationList:
    """A CRL signed by the root: every revoked serial with its revocation date and reason code.

    Revocations dated after `this_update` are left out (they belong to the next CRL). The CRL
    number must grow with each CRL issued (RFC 5280 §5.2.3); the caller keeps the counter.
    """
    this_update = require_aware(this_update, "this_update")
    next_update = require_aware(next_update, "next_update") if next_update else this_update + CRL_REFRESH
    if crl_number < 1:
        raise PkiError(f"the CRL number must be positive, got {crl_number}")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    for revocation in sorted(revocations, key=lambda r: r.serial):
        if revocation.revoked_at > this_update:
            continue
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial_number)
            .revocation_date(revocation.revoked_at)
            .add_extension(x509.CRLReason(revocation.reason.rfc5280), critical=False)
            .build()
        )
    return builder.sign(ca.key, SIGNATURE_HASH)


def revocation_to_record(revocation: Revocation) -> dict[str, Any]:
    """The Avro record (schemas/avro/revocation.avsc) of a revocation, for fastavro."""
    return {
        "serial": revocation.serial,
        "reason": revocation.reason.value,
        "revoked_at": revocation.revoked_at,
        "municipality_code": revocation.municipality_code,
    }


def revocation_from_record(record: Mapping[str, Any]) -> Revocation:
    """A revocation from its decoded Avro record (fastavro gives timestamp-millis as aware UTC datetimes)."""
    revoked_at = record["revoked_at"]
    if isinstance(revoked_at, int):  # a reader without logical types gives epoch milliseconds
        revoked_at = datetime.fromtimestamp(revoked_at / 1000, UTC)
    try:
        reason = RevocationReason(record["reason"])
    except ValueError as exc:
        raise PkiError(f"unknown revocation reason {record['reason']!r} for serial {record.get('serial')!r}") from exc
    return Revocation(serial=record["serial"], reason=reason, revoked_at=revoked_at,
                      municipality_code=record.get("municipality_code"))


def crl_entry_serials(crl: x509.CertificateRevocationList) -> list[str]:
    """The serials a CRL lists, in register form."""
    return [format_serial(entry.serial_number) for entry in crl]
