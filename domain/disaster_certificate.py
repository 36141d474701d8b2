"""罹災証明書 and 被災証明書 (docs/domain.md §6.3): what the ledger knows of a household in a declared disaster,
which disaster a kiosk certificate is about, what each certificate states, and its number. Pure: no I/O.

- `HouseholdDisasterFacts`: a household's entry in one disaster's ledger (被災者台帳) as the certificate worker
  knows it: the household head and address as of 発災日時, the damaged dwelling (住家) and, once surveyed, its
  damage level (§6.2) and flood depth, and what the household reported as damaged besides the dwelling.
- `choose_disaster`: of the disasters open in the municipality, the one the certificate is about: the latest
  to occur whose ledger holds the household (for a 罹災証明書, preferring one where the dwelling is assessed),
  or the reason there is none (NOT_IN_DISASTER_LEDGER, DAMAGE_NOT_ASSESSED, DAMAGE_NOT_REPORTED).
- `DamageCertificate` (罹災証明書) and `AffectedCertificate` (被災証明書): the items each certificate states, fixed
  when it is issued. The issued certificate (archived, logged, verified from its back) is what was printed:
  a later re-survey changes the ledger, never a certificate issued before it.
- The number (`certificate_number`): 「第R-302066-1A2B3C4D-5E6F7A8B9C0D号」 — the kind (R 罹災, H 被災), the
  municipality, the disaster (the first 8 hex digits of its id, upper case) and 12 hex digits derived from
  the kiosk request id. Per municipality and disaster, the same for every copy of one issuance (each copy has
  its own certificate id on its back), different for every issuance, and stable when a request is decided
  again after a restart (no counter to keep consistent across worker restarts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.certificate_types import CertificateType
from domain.damage_levels import DamageLevel, FloodDepth
from domain.disasters import Disaster
from domain.japan_time import to_japan_time
from domain.kiosk_rules import ReasonCode, Refusal, refusal

_NUMBER_PREFIX = {CertificateType.DISASTER_DAMAGE: "R", CertificateType.DISASTER_AFFECTED: "H"}


@dataclass(frozen=True)
class HouseholdDisasterFacts:
    """A household in one disaster's ledger, as far as its certificates need it."""

    disaster_id: str
    municipality_code: str
    household_number: str
    household_head_name: str  # 世帯主 as of 発災日時
    household_address: str  # the household's address as of 発災日時
    dwelling_id: str  # domain.dwellings.dwelling_id of the damaged dwelling (住家)
    dwelling_address: str  # its location, as printed
    damage_level: DamageLevel | None = None  # None: not surveyed yet
    flood_depth: FloodDepth | None = None
    remarks: str = ""  # 備考 the survey recorded for the certificate
    reported_damage: tuple[str, ...] = ()  # what the household reported besides the dwelling (車両, 家財, …)

    @property
    def assessed(self) -> bool:
        return self.damage_level is not None


# The requester's household's entry in a disaster's ledger, by disaster id: its facts, or None (not in it).
FactsOf = Callable[[str], HouseholdDisasterFacts | None]


def choose_disaster(kind: CertificateType, declared: Sequence[Disaster],
                    facts_of: FactsOf) -> tuple[Disaster, HouseholdDisasterFacts] | Refusal:
    """The disaster (of `declared`, those open in the municipality) a certificate of `kind` is about, with the
    household's facts in it; or the refusal. The latest disaster to occur first; a 罹災証明書 is about one whose
    survey of the dwelling is done, a 被災証明書 about one where damage was reported."""
    if not declared:
        return refusal(ReasonCode.DISASTER_NOT_DECLARED, "no open disaster in the municipality")
    entries = [(d, f) for d in sorted(declared, key=lambda d: (d.occurred_at, d.disaster_id), reverse=True)
               if (f := facts_of(d.disaster_id)) is not None]
    if not entries:
        return refusal(ReasonCode.NOT_IN_DISASTER_LEDGER,
                       f"the household is in none of the {len(declared)} open disasters' ledgers")
    if kind is CertificateType.DISASTER_DAMAGE:
        usable = [(d, f) for d, f in entries if f.assessed]
        if not usable:
            return refusal(ReasonCode.DAMAGE_NOT_ASSESSED, "the dwelling's damage is not assessed yet")
    else:
        usable = [(d, f) for d, f in entries if f.reported_damage]
        if not usable:
            return refusal(ReasonCode.DAMAGE_NOT_REPORTED, "no damage reported by the household")
    return usable[0]


def certificate_number(kind: CertificateType, municipality_code: str, disaster_id: str, request_id: str) -> str:
    """The printed number without 第…号 (module doc): e.g. R-302066-1A2B3C4D-5E6F7A8B9C0D."""
    prefix = _NUMBER_PREFIX[kind]
    disaster = disaster_id.replace("-", "")[:8].upper()
    issuance = hashlib.sha256(f"{municipality_code}/{disaster_id}/{request_id}".encode()).hexdigest()[:12].upper()
    return f"{prefix}-{municipality_code}-{disaster}-{issuance}"


@dataclass(frozen=True)
class DisasterCause:
    """原因: the disaster's name, when it occurred (発災日, Japan date) and its kind."""

    name: str
    occurred_on: dt.date
    kind_label: str


@dataclass(frozen=True)
class DamageCertificate:
    """罹災証明書: the items it states besides the issue date and the mayor (the certification block)."""

    number: str
    household_head_name: str
    household_address: str
    dwelling_address: str
    cause: DisasterCause
    level: DamageLevel
    flood_depth: FloodDepth | None
    remarks: str

    @property
    def level_label(self) -> str:
        return self.level.japanese


@dataclass(frozen=True)
class AffectedCertificate:
    """被災証明書: that the applicant (the requester, printed from the register record like the other
    certificates) reported damage to other property than the dwelling, or that they were affected."""

    number: str
    cause: DisasterCause
    reported: tuple[str, ...]  # what was reported damaged, as the ledger holds it


DisasterCertificate = DamageCertificate | AffectedCertificate


def cause_of(disaster: Disaster) -> DisasterCause:
    return DisasterCause(disaster.name, to_japan_time(disaster.occurred_at).date(), disaster.kind.japanese)


def disaster_certificate(kind: CertificateType, disaster: Disaster, facts: HouseholdDisasterFacts,
                         request_id: str) -> DisasterCertificate:
    """What the certificate of `kind` states, fixed now (choose_disaster gave `disaster` and `facts`)."""
    number = certificate_number(kind, facts.municipality_code, disaster.disaster_id, request_id)
    if kind is CertificateType.DISASTER_DAMAGE:
        assert facts.damage_level is not None  # choose_disaster refuses a dwelling not assessed
        return DamageCertificate(number, facts.household_head_name, facts.household_address, facts.dwelling_address,
                                 cause_of(disaster), facts.damage_level, facts.flood_depth, facts.remarks)
    if kind is CertificateType.DISASTER_AFFECTED:
        return AffectedCertificate(number, cause_of(disaster), facts.reported_damage)
    raise ValueError(f"{kind} is not a disaster certificate")
