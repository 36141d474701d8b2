"""The issuance decision (domain.issuance_decision): pure, over in-memory ports, with a real RSA card."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from domain.certificate_types import TAX_CERTIFICATES, CertificateType
from domain.challenge import challenge_bytes
from domain.errors import UnknownIssuerError
from domain.issuance_decision import IssuancePolicy, Issue, Lookups, ResidentCopyItems, decide
from domain.japan_time import JST
from domain.kiosk_rules import MESSAGES, FeeTable, MaintenanceWindow, ReasonCode, Refusal, Resident, refusal
from tests.domain.conftest import CHECKED_AT
from tests.factories import make_resident

TANABE = "302066"  # 田辺市
NOW = CHECKED_AT
SERIAL = "0000000000000abc"
# The kinds the renderer lays out today (certgen.certificate_document.LAID_OUT_TYPES), stated here so that
# the decision is tested without the document package.
LAID_OUT = frozenset({CertificateType.RESIDENT_RECORD, CertificateType.SEAL_REGISTRATION, *TAX_CERTIFICATES})
SEAL = {"registration_number": "1", "registered_on": dt.date(2020, 1, 1), "status": "REGISTERED",
        "impression_png": b""}
TAX = [{"fiscal_year": y, "income_yen": 1, "taxable_income_yen": 1, "tax_yen": 1, "tax_exempt": False,
        "paid_yen": 1, "payment_status": "PAID"} for y in (2025, 2026)]


def make_request(card: tuple[rsa.RSAPrivateKey, x509.Certificate], *, signed_id: str | None = None,
                 **fields: Any) -> dict[str, Any]:
    """A decoded CertificateRequest as the kiosk sends it, signed by the card over its own challenge
    (or over another request id's, with signed_id)."""
    key, cert = card
    request: dict[str, Any] = {
        "request_id": "r1", "kiosk_id": "K1", "kiosk_vendor": "seven-eleven", "centre": "WEST",
        "kiosk_municipality_code": TANABE, "municipality_code": TANABE, "certificate_type": "RESIDENT_RECORD",
        "household_scope": "SELF", "include_head_and_relationship": True, "include_domicile": False,
        "fiscal_year": None, "copies": 1, "auth_certificate": cert.public_bytes(Encoding.DER),
        "requested_at": NOW, "paid_yen": 200, **fields,
    }
    challenge = challenge_bytes({**request, "request_id": signed_id or request["request_id"]})
    request["challenge_signature"] = key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
    return request


@dataclass
class World:
    """The ports' state in memory: the register by serial, households, revocations, the root's verdict."""

    records: dict[str, list[Resident]] = field(default_factory=dict)
    households: dict[tuple[str, str], list[Resident]] = field(default_factory=dict)
    revoked: dict[str, Refusal] = field(default_factory=dict)
    untrusted: bool = False
    laid_out: frozenset[CertificateType] = LAID_OUT
    asked: list[str] = field(default_factory=list)  # which ports were consulted, in order

    def lookups(self) -> Lookups:
        def verify(certificate: x509.Certificate, at: dt.datetime) -> None:
            self.asked.append("verify_certificate")
            assert at == NOW
            if self.untrusted:
                raise UnknownIssuerError("not issued by the JPKI-TEST root")

        def revocation(certificate: x509.Certificate, serial: str, now: dt.datetime) -> Refusal | None:
            self.asked.append("revocation_refusal")
            assert certificate.serial_number == 0xABC and now == NOW
            return self.revoked.get(serial)

        def by_serial(serial: str) -> Sequence[Resident]:
            self.asked.append("records_for_serial")
            return self.records.get(serial, [])

        def household(municipality_code: str, household_number: str) -> Sequence[Resident]:
            self.asked.append("household")
            return self.households.get((municipality_code, household_number), [])

        def has_layout(kind: CertificateType) -> bool:
            self.asked.append("has_layout")
            return kind in self.laid_out

        return Lookups(verify, revocation, by_serial, household, has_layout)


def resident(**overrides: Any) -> dict[str, Any]:
    return make_resident(TANABE, 3, jpki_certificates=[SERIAL], **overrides)


def world_with(*records: Resident) -> World:
    return World(records={SERIAL: list(records)})


def test_each_rule_in_order_until_the_request_is_issued(card) -> None:
    """A request that breaks every rule is refused for the first; mended one rule at a time, it is
    refused for each of the next in the documented order, then issued."""
    maintenance = MaintenanceWindow(TANABE, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1))
    now = dt.datetime(2026, 11, 20, 23, 30, tzinfo=JST).astimezone(dt.UTC)
    world = World(untrusted=True, revoked={SERIAL: refusal(ReasonCode.CARD_REVOKED, "in the CRL")},
                  laid_out=frozenset())
    policy = IssuancePolicy(maintenance=(maintenance,))
    fields: dict[str, Any] = {"municipality_code": "999999", "requested_at": NOW - dt.timedelta(minutes=6),
                              "certificate_type": "FAMILY_REGISTER", "copies": 11, "paid_yen": 0}
    signed_id: str | None = "another-request"

    def mend_signature() -> None:
        nonlocal signed_id
        signed_id = None

    def mend_now() -> None:
        nonlocal now
        now = NOW

    def mend_policy() -> None:
        nonlocal policy
        policy = IssuancePolicy()

    steps = [
        (ReasonCode.UNKNOWN_MUNICIPALITY, lambda: fields.update(municipality_code=TANABE)),
        (ReasonCode.OUTSIDE_SERVICE_HOURS, mend_now),
        (ReasonCode.MAINTENANCE, mend_policy),
        (ReasonCode.REQUEST_EXPIRED, lambda: fields.update(requested_at=NOW)),
        (ReasonCode.CERTIFICATE_UNTRUSTED, lambda: setattr(world, "untrusted", False)),
        (ReasonCode.BAD_SIGNATURE, mend_signature),
        (ReasonCode.CARD_REVOKED, world.revoked.clear),
        (ReasonCode.NOT_AVAILABLE_VIA_BCL, lambda: fields.update(certificate_type="SEAL_REGISTRATION")),
        (ReasonCode.INVALID_COPIES, lambda: fields.update(copies=2)),
        (ReasonCode.NO_RESIDENT, lambda: world.records.update({SERIAL: [make_resident("131016", 3)]})),
        (ReasonCode.OTHER_MUNICIPALITY, lambda: world.records.update({SERIAL: [resident(status="DELETED")]})),
        (ReasonCode.RECORD_DELETED, lambda: world.records.update({SERIAL: [resident()]})),
        (ReasonCode.NO_SEAL_REGISTRATION, lambda: world.records.update({SERIAL: [resident(seal=SEAL)]})),
        (ReasonCode.ISSUE_FAILED, lambda: setattr(world, "laid_out", LAID_OUT)),
        (ReasonCode.INSUFFICIENT_PAYMENT, lambda: fields.update(paid_yen=400)),
    ]
    for code, mend in steps:
        decision = decide(make_request(card, signed_id=signed_id, **fields), now, world.lookups(), policy)
        assert isinstance(decision, Refusal) and decision.code is code, (code, decision)
        assert decision.message == MESSAGES[code]
        mend()
    issued = decide(make_request(card, signed_id=signed_id, **fields), now, world.lookups(), policy)
    assert isinstance(issued, Issue) and issued.kind is CertificateType.SEAL_REGISTRATION and issued.copies == 2


def test_a_refusal_consults_no_port_after_its_rule(card) -> None:
    world = world_with(resident())
    unknown = decide(make_request(card, municipality_code="999999"), NOW, world.lookups(), IssuancePolicy())
    assert unknown == refusal(ReasonCode.UNKNOWN_MUNICIPALITY, "999999 not in the reference data")
    assert world.asked == []
    decide(make_request(card, copies=0), NOW, world.lookups(), IssuancePolicy())
    assert world.asked == ["verify_certificate", "revocation_refusal"]


def test_a_resident_copy_of_the_requester_alone(card) -> None:
    requester = resident()
    world = world_with(requester)
    issue = decide(make_request(card), NOW, world.lookups(), IssuancePolicy())
    assert issue == Issue(CertificateType.RESIDENT_RECORD, issue.municipality, (requester,), copies=1,
                          fee_per_copy=200, resident_copy=ResidentCopyItems(household_head_and_relationship=True,
                                                                            domicile=False), tax_year=None)
    assert issue.municipality.code == TANABE and issue.municipality.name == "田辺市"
    assert issue.records_read == 1 and issue.fee_yen == 200
    assert "household" not in world.asked  # only a whole-household copy reads the household


def test_a_whole_household_copy_prints_the_current_members_head_first(card) -> None:
    child = resident(relationship="子", birth_date=dt.date(2010, 1, 1))
    number = child["household_number"]
    head = make_resident(TANABE, 4, household_number=number, birth_date=dt.date(1970, 1, 1))
    wife = make_resident(TANABE, 5, household_number=number, relationship="妻", birth_date=dt.date(1972, 1, 1))
    gone = make_resident(TANABE, 6, household_number=number, relationship="子", status="DELETED")
    world = world_with(child)
    world.households[(TANABE, number)] = [child, wife, gone, head]
    issue = decide(make_request(card, household_scope="WHOLE_HOUSEHOLD"), NOW, world.lookups(), IssuancePolicy())
    assert isinstance(issue, Issue)
    assert [r["resident_code"] for r in issue.residents] == [head["resident_code"], wife["resident_code"],
                                                            child["resident_code"]]
    assert issue.records_read == 3  # the audit counts the records printed, not the deleted member


def test_the_fee_is_the_municipalitys_and_the_payment_must_cover_every_copy(card) -> None:
    world = world_with(resident())
    policy = IssuancePolicy(fees=FeeTable(overrides={TANABE: {CertificateType.RESIDENT_RECORD: 250}}))
    short = decide(make_request(card, copies=3, paid_yen=749), NOW, world.lookups(), policy)
    assert short == refusal(ReasonCode.INSUFFICIENT_PAYMENT, "paid 749 yen, due 750 yen")
    issue = decide(make_request(card, copies=3, paid_yen=750), NOW, world.lookups(), policy)
    assert isinstance(issue, Issue) and (issue.fee_per_copy, issue.copies, issue.fee_yen) == (250, 3, 750)
    income = decide(make_request(card, certificate_type="INCOME", paid_yen=300), NOW,
                    world_with(resident(tax_records=TAX)).lookups(), policy)
    assert isinstance(income, Issue) and income.fee_per_copy == 300  # the default table where not overridden


def test_a_tax_certificate_shows_the_year_asked_for_or_the_latest(card) -> None:
    world = world_with(resident(tax_records=TAX))
    latest = decide(make_request(card, certificate_type="TAXATION", paid_yen=300), NOW, world.lookups(),
                    IssuancePolicy())
    asked = decide(make_request(card, certificate_type="TAXATION", fiscal_year=2025, paid_yen=300), NOW,
                   world.lookups(), IssuancePolicy())
    missing = decide(make_request(card, certificate_type="TAXATION", fiscal_year=2019, paid_yen=300), NOW,
                     world.lookups(), IssuancePolicy())
    assert isinstance(latest, Issue) and latest.tax_year == 2026 and latest.resident_copy is None
    assert isinstance(asked, Issue) and asked.tax_year == 2025
    assert missing == refusal(ReasonCode.NO_TAX_RECORD, "no tax record for fiscal year 2019")


def test_a_declared_disaster_still_has_no_layout(card) -> None:
    world = world_with(resident())
    request = make_request(card, certificate_type="DISASTER_DAMAGE", paid_yen=10)
    ordinary = IssuancePolicy()
    undeclared = decide(request, NOW, world.lookups(), ordinary)
    assert undeclared == refusal(ReasonCode.DISASTER_NOT_DECLARED, f"no declared disaster in {TANABE}")
    declared = dataclasses.replace(ordinary, disaster_declared_in=frozenset({TANABE}))
    no_layout = decide(request, NOW, world.lookups(), declared)
    assert no_layout == refusal(ReasonCode.ISSUE_FAILED, "DISASTER_DAMAGE has no certificate layout")
    # Once a layout exists, a declared disaster's certificate is issued at its own fee.
    world.laid_out = LAID_OUT | {CertificateType.DISASTER_DAMAGE}
    issue = decide(request, NOW, world.lookups(), declared)
    assert isinstance(issue, Issue) and issue.kind is CertificateType.DISASTER_DAMAGE and issue.fee_per_copy == 10
