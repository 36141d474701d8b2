"""Whether a kiosk request is issued, and what is printed (docs/domain.md §3, §4). Pure: no I/O.

`decide` applies the rules of domain.kiosk_rules and the card check of domain.request_authentication
in the order of docs/domain.md §3; the first that fails refuses the request. It holds no state: what
needs the world (the card's chain to the root, revocation, the resident directory, the disasters open
and the households in their ledgers, which kinds have a layout) is asked through `Lookups`, and what
the centre configures comes in as `IssuancePolicy`.
The result is a value, a `Refusal` or an `Issue`, from which the certificate worker builds its
render job. The replay guard is not here: it needs the worker's ledger and comes first, in the worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from domain import kiosk_rules as rules
from domain.certificate_types import DISASTER_CERTIFICATES, CertificateType
from domain.challenge import challenge_bytes
from domain.disaster_certificate import (
    DisasterCertificate,
    HouseholdDisasterFacts,
    choose_disaster,
    disaster_certificate,
)
from domain.disasters import Disaster
from domain.errors import UnknownMunicipalityError
from domain.kiosk_request import check_request_fields
from domain.kiosk_rules import FeeTable, MaintenanceWindow, ReasonCode, Refusal, Resident, refusal
from domain.municipalities import Municipality, municipality
from domain.request_authentication import FRESHNESS_WINDOW, CertificateCheck, authenticate_request

KioskRequest = Mapping[str, Any]  # a decoded jp.bcl.kiosk.CertificateRequest

# The refusal for a revoked, unknown or uncheckable certificate (serial as in the register), else None.
RevocationCheck = Callable[[x509.Certificate, str, dt.datetime], Refusal | None]


@dataclass(frozen=True)
class Lookups:
    """What the decision asks the world, each a small port the caller binds to its own state."""

    verify_certificate: CertificateCheck  # the chain to the JPKI root, validity at a time, purpose
    revocation_refusal: RevocationCheck
    records_for_serial: Callable[[str], Sequence[Resident]]  # every register record listing the serial
    household: Callable[[str, str], Sequence[Resident]]  # (municipality code, household number) → records
    # Whether the renderer has a layout for the kind: the layouts live in certgen, above this package.
    has_layout: Callable[[CertificateType], bool]
    # The disasters open (declared, not closed) for a municipality code, as the disaster events tell.
    declared_disasters: Callable[[str], Sequence[Disaster]]
    # (disaster id, the requester's record) → the household's entry in that disaster's ledger, None if not in it.
    disaster_facts: Callable[[str, Resident], HouseholdDisasterFacts | None]


@dataclass(frozen=True)
class IssuancePolicy:
    """What the centre configures, as values."""

    fees: FeeTable = field(default_factory=FeeTable)  # per municipality and kind: the default table, overrides
    maintenance: tuple[MaintenanceWindow, ...] = ()  # municipalities' windows: refused inside one
    freshness: dt.timedelta = FRESHNESS_WINDOW  # how far the kiosk's request time may be from `now`


@dataclass(frozen=True)
class ResidentCopyItems:
    """The optional items a 住民票の写し shows, as the resident chose them at the kiosk."""

    household_head_and_relationship: bool  # 世帯主・続柄
    domicile: bool  # 本籍・筆頭者


@dataclass(frozen=True)
class Issue:
    """A request that passed every rule: what to print, for whom, how many copies and at what fee."""

    kind: CertificateType
    municipality: Municipality
    residents: tuple[Resident, ...]  # the requester alone, or the household in printed order
    copies: int
    fee_per_copy: int
    resident_copy: ResidentCopyItems | None  # only for a 住民票の写し
    tax_year: int | None  # the fiscal year a tax certificate shows
    disaster: DisasterCertificate | None = None  # what a 罹災証明書 or 被災証明書 states, fixed at issuance

    @property
    def records_read(self) -> int:
        """The register records this issue reads, for the audit log: those it prints."""
        return len(self.residents)

    @property
    def fee_yen(self) -> int:
        return self.fee_per_copy * self.copies


def decide(request: KioskRequest, now: dt.datetime, lookups: Lookups, policy: IssuancePolicy) -> Refusal | Issue:
    """Every rule in order (the fields' limits, municipality, service hours, the card, revocation, type and
    copies, the resident, content, the disaster ledger, layout, payment); the first refusal, or what to
    issue. `now`: the centre's clock."""
    invalid = check_request_fields(request)
    if invalid is not None:
        return invalid
    code = request["municipality_code"]
    try:
        asked = municipality(code)  # the municipality asked to issue
    except UnknownMunicipalityError:
        return refusal(ReasonCode.UNKNOWN_MUNICIPALITY, f"{code} not in the reference data")
    closed = rules.check_service_hours(now, code, policy.maintenance)
    if closed is not None:
        return closed
    card = authenticate_request(challenge=challenge_bytes(request),
                                requested_at=request["requested_at"], certificate_der=request["auth_certificate"],
                                signature=request["challenge_signature"],
                                verify_certificate=lookups.verify_certificate, now=now, window=policy.freshness)
    if isinstance(card, Refusal):
        return card
    revoked = lookups.revocation_refusal(card.certificate, card.serial, now)
    if revoked is not None:
        return revoked
    kind = CertificateType(request["certificate_type"])
    copies: int = request["copies"]
    declared = lookups.declared_disasters(code) if kind in DISASTER_CERTIFICATES else ()
    unavailable = (rules.check_certificate_type(kind, code, bool(declared)) or rules.check_copies(copies))
    if unavailable is not None:
        return unavailable
    record = rules.choose_record(lookups.records_for_serial(card.serial))
    if isinstance(record, Refusal):
        return record
    ineligible = rules.check_resident(record, code)
    if ineligible is not None:
        return ineligible
    assert record is not None  # check_resident refuses a missing record
    fiscal_year: int | None = request["fiscal_year"]
    lacking = rules.check_certificate_content(kind, record, fiscal_year)
    if lacking is not None:
        return lacking
    disaster = None
    if kind in DISASTER_CERTIFICATES:
        chosen = choose_disaster(kind, declared, lambda disaster_id: lookups.disaster_facts(disaster_id, record))
        if isinstance(chosen, Refusal):
            return chosen
        disaster = disaster_certificate(kind, *chosen, request_id=request["request_id"])
    if not lookups.has_layout(kind):  # every kind issued has one; a safety net for a kind added without one
        return refusal(ReasonCode.ISSUE_FAILED, f"{kind} has no certificate layout")
    fee_per_copy = policy.fees.fee(code, kind)
    unpaid = rules.check_payment(fee_per_copy, copies, request["paid_yen"])
    if unpaid is not None:
        return unpaid
    whole = request["household_scope"] == "WHOLE_HOUSEHOLD"
    household = lookups.household(code, record["household_number"]) if whole else ()
    items = None
    if kind is CertificateType.RESIDENT_RECORD:
        items = ResidentCopyItems(household_head_and_relationship=request["include_head_and_relationship"],
                                  domicile=request["include_domicile"])
    return Issue(kind, asked, tuple(rules.household_members(record, household, whole)), copies, fee_per_copy,
                 items, rules.select_tax_year(record, fiscal_year), disaster)
