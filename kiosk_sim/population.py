"""Virtual My Number cards for the residents of a register, for kiosk sessions and load runs.

Residents come from the materialised backup (the snapshot store's change history, latest state per
record) or straight from the register simulator. Each current resident with a JPKI user-authentication
certificate in the register gets a virtual card whose certificate carries the register's serial and
validity, issued by the test PKI, so the centre finds the resident through the serial exactly as with
a real card.

Speed: card keys come from a KeyPool (generating RSA-2048 keys costs 50-100 ms each), and issued
certificates are recorded in the PKI index, so a later run reuses them (one indexed lookup and a DER
parse per card) instead of signing again. A serial already issued by someone else with a key that is
not the pool's (e.g. by `bcl pki issue-card`) cannot become a virtual card: it is counted and skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import validity_instants
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.errors import KioskSimError

if TYPE_CHECKING:
    from sinks.snapshot_store import BaseSnapshotStore

DEFAULT_PIN = "1234"
# Token info of the JPKI application by where the certificate lives (docs/card_protocol.md).
TOKEN_INFO = {CertificateKind.CARD: "JPKIAPICCTOKEN2", CertificateKind.SMARTPHONE: "JPKIAPGPSETOKEN"}


class PopulationError(KioskSimError):
    """No residents with cards could be found, or the PKI cannot issue their certificates."""


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """What the load generator needs to know about a resident to choose realistic requests.
    No names or numbers: the resident code identifies the record for `bcl kiosk issue --resident`."""

    municipality_code: str
    resident_code: str
    household_number: str
    serial: str  # the certificate the resident presents (the card's, else the smartphone's)
    kind: CertificateKind
    not_before: dt.date
    not_after: dt.date
    has_seal: bool
    tax_years: tuple[int, ...]


@dataclass(slots=True)
class VirtualResident:
    profile: ResidentProfile
    card: JpkiCard
    pin: str


def profile_of(record: Mapping[str, Any]) -> ResidentProfile | None:
    """The profile of a register record (a Resident dict): None if the resident is not current or has
    no user-authentication certificate."""
    if record.get("status") != "CURRENT":
        return None
    certificates = list(record.get("jpki_certificates") or ())
    if not certificates:
        return None
    certificates.sort(key=lambda c: (c["kind"] != CertificateKind.CARD.value, c["serial"]))
    chosen = certificates[0]
    seal = record.get("seal")
    return ResidentProfile(
        municipality_code=record["municipality_code"],
        resident_code=record["resident_code"],
        household_number=record["household_number"],
        serial=chosen["serial"],
        kind=CertificateKind(chosen["kind"]),
        not_before=chosen["not_before"],
        not_after=chosen["not_after"],
        has_seal=seal is not None and seal.get("status") == "REGISTERED",
        tax_years=tuple(sorted(t["fiscal_year"] for t in record.get("tax_records") or ())),
    )


def profiles_from_records(records: Iterable[Mapping[str, Any]]) -> list[ResidentProfile]:
    """Profiles of the current residents with a certificate (e.g. RegisterSimulator.register.records)."""
    return [p for p in (profile_of(r) for r in records) if p is not None]


_BACKUP_QUERY = """
    SELECT municipality_code, resident_code, household_number, status, jpki_certificates,
           struct_pack(status := seal.status) AS seal,
           list_transform(tax_records, lambda t: struct_pack(fiscal_year := t.fiscal_year)) AS tax_records
    FROM ({latest}) WHERE NOT removed AND status = 'CURRENT' AND len(jpki_certificates) > 0
    ORDER BY resident_code"""


def profiles_from_backup(store: BaseSnapshotStore, municipality_code: str, audit_file: Path,
                         limit: int | None = None, *, action: str = "kiosk-population",
                         purpose: str = "virtual cards for kiosk sessions (certificate serials only)",
                         ) -> list[ResidentProfile]:
    """Profiles of the municipality's current residents with a certificate, from the materialised backup.
    The read is recorded in the audit log (it touches the register) under `action`, with its purpose."""
    import duckdb

    from sinks.audit import record_access
    from sinks.snapshot_store import latest_changes

    if not store.has_history():
        raise PopulationError("the snapshot store holds no backup yet: load the municipality and run the materialiser")
    con = duckdb.connect()
    try:
        latest = latest_changes(store.history_relation(con), "municipality_code = $municipality")
        query = _BACKUP_QUERY.format(latest=latest)
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        cursor = con.execute(query, {"municipality": municipality_code})
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    record_access(audit_file, action, municipality_code, len(rows), purpose=purpose)
    profiles = profiles_from_records(rows)
    if not profiles:
        raise PopulationError(f"the backup holds no current resident of {municipality_code} with a JPKI certificate")
    return profiles


@dataclass
class CardCounters:
    issued: int = 0  # certificates signed in this run
    reused: int = 0  # found in the PKI index from an earlier run
    foreign: int = 0  # serial already issued with a key not in the pool: no card possible


class VirtualCardIssuer:
    """Builds virtual cards, issuing each certificate in the test PKI once (later runs reuse it)."""

    def __init__(self, pki: PkiDirectory, key_pool: KeyPool, *, pin: str = DEFAULT_PIN) -> None:
        if not pki.is_initialised:
            raise PopulationError(f"the test PKI in {pki.path} is not initialised: run `bcl pki init`")
        self._pki = pki
        self._pool = key_pool
        self._pin = pin
        self._ca_der = pki.auth_root_certificate().public_bytes(serialization.Encoding.DER)
        self.counters = CardCounters()

    def card_key(self, profile: ResidentProfile, now: dt.datetime) -> CardKey | None:
        """The card's key and certificate; None if the serial belongs to a certificate of a key not in the pool."""
        key = self._pool.key_for_serial(profile.serial)
        existing = self._pki.index.get(profile.serial)
        if existing is not None:
            certificate = x509.load_der_x509_certificate(existing.der)
            if certificate.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
                self.counters.foreign += 1
                return None
            self.counters.reused += 1
            return CardKey(key, existing.der)
        not_before, not_after = validity_instants(profile.not_before, profile.not_after)
        certificate = self._pki.issue_certificate(profile.serial, profile.kind, key.public_key(), not_before,
                                                  not_after, now)
        self.counters.issued += 1
        return CardKey(key, certificate.public_bytes(serialization.Encoding.DER))

    def card(self, profile: ResidentProfile, now: dt.datetime) -> VirtualResident | None:
        key = self.card_key(profile, now)
        if key is None:
            return None
        card = JpkiCard(auth=key, auth_pin=self._pin, auth_ca_certificate_der=self._ca_der,
                        token_info=TOKEN_INFO[profile.kind])
        return VirtualResident(profile, card, self._pin)

    def population(self, profiles: Iterable[ResidentProfile], now: dt.datetime,
                   progress: Callable[[int], None] | None = None) -> list[VirtualResident]:
        """Cards for every profile that can have one; `progress(1)` after each."""
        residents = []
        for profile in profiles:
            resident = self.card(profile, now)
            if resident is not None:
                residents.append(resident)
            if progress is not None:
                progress(1)
        return residents
