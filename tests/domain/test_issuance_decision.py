"""The issuance decision (domain.issuance_decision): pure, over in-memory ports, with a real RSA card."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from domain.certificate_types import DISASTER_CERTIFICATES, TAX_CERTIFICATES, CertificateType
from domain.challenge import challenge_bytes
from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_certificate import AffectedCertificate, DamageCertificate, HouseholdDisasterFacts
from domain.disasters import Disaster, DisasterKind
from domain.errors import UnknownIssuerError
from domain.issuance_decision import IssuancePolicy, Issue, Lookups, ResidentCopyItems, decide
from domain.japan_time import JST
from domain.kiosk_rules import MESSAGES, FeeTable, MaintenanceWindow, ReasonCode, Refusal, Resident, refusal
from tests.domain.conftest import CHECKED_AT
from tests.factories import make_resident

TANABE = "302066"  # 田辺市
NOW = CHECKED_AT
SERIAL = "0000000000000abc"
# The kinds the renderer lays out (certgen.certificate_document.LAID_OUT_TYPES), stated here so that
# the decision is tested without the document package.
LAID_OUT = frozenset({CertificateType.RESIDENT_RECORD, CertificateType.SEAL_REGISTRATION, *TAX_CERTIFICATES,
                      *DISASTER_CERTIFICATES})
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
    disasters: dict[str, list[Disaster]] = field(default_factory=dict)  # open disasters by municipality
    ledger: dict[tuple[str, str], HouseholdDisasterFacts] = field(default_factory=dict)  # (disaster, resident code)
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

        def declared(municipality_code: str) -> Sequence[Disaster]:
            self.asked.append("declared_disasters")
            return self.disasters.get(municipality_code, [])

        def facts(disaster_id: str, record: Resident) -> HouseholdDisasterFacts | None:
            self.asked.append("disaster_facts")
            return self.ledger.get((disaster_id, record["resident_code"]))

        return Lookups(verify, revocation, by_serial, household, has_layout, declared, facts)


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


EARTHQUAKE = Disaster("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "令和8年紀伊半島沖地震", DisasterKind.EARTHQUAKE,
                      (TANABE,), dt.datetime(2026, 11, 1, 1, 30, tzinfo=dt.UTC),
                      dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC))
FLOOD = Disaster("9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa", "令和8年11月豪雨", DisasterKind.FLOOD, (TANABE,),
                 dt.datetime(2026, 11, 10, 6, tzinfo=dt.UTC), dt.datetime(2026, 11, 10, 7, tzinfo=dt.UTC))


def reason(decision: Refusal | Issue) -> ReasonCode | None:
    return decision.code if isinstance(decision, Refusal) else None


def household_facts(disaster: Disaster, **overrides: Any) -> HouseholdDisasterFacts:
    values: dict[str, Any] = {
        "disaster_id": disaster.disaster_id, "municipality_code": TANABE, "household_number": "H000000003",
        "household_head_name": "田辺　一郎", "household_address": "和歌山県田辺市新屋敷町1番地",
        "dwelling_id": "D1", "dwelling_address": "和歌山県田辺市新屋敷町1番地", **overrides}
    return HouseholdDisasterFacts(**values)


def test_disaster_certificates_follow_the_declared_disaster_and_the_ledger(card) -> None:
    """Each refusal of a disaster certificate in order, mended one at a time, then the 罹災証明書 issued with the
    level the ledger has now and the 被災証明書 with what was reported, each at 10 yen a copy."""
    record = resident()
    world = world_with(record)
    damage = make_request(card, certificate_type="DISASTER_DAMAGE", copies=2, paid_yen=20)
    affected = make_request(card, certificate_type="DISASTER_AFFECTED", paid_yen=10)
    policy = IssuancePolicy()
    assert decide(damage, NOW, world.lookups(), policy) == refusal(ReasonCode.DISASTER_NOT_DECLARED,
                                                                   f"no declared disaster in {TANABE}")
    assert "disaster_facts" not in world.asked  # nothing asked of the ledger without a disaster
    world.disasters[TANABE] = [EARTHQUAKE]
    assert reason(decide(damage, NOW, world.lookups(), policy)) is ReasonCode.NOT_IN_DISASTER_LEDGER
    world.ledger[(EARTHQUAKE.disaster_id, record["resident_code"])] = household_facts(EARTHQUAKE)
    assert reason(decide(damage, NOW, world.lookups(), policy)) is ReasonCode.DAMAGE_NOT_ASSESSED
    assert reason(decide(affected, NOW, world.lookups(), policy)) is ReasonCode.DAMAGE_NOT_REPORTED
    world.ledger[(EARTHQUAKE.disaster_id, record["resident_code"])] = household_facts(
        EARTHQUAKE, damage_level=DamageLevel.HANKAI, flood_depth=FloodDepth.ABOVE_FLOOR, remarks="津波による浸水",
        reported_damage=("自動車（浸水）",))
    issue = decide(damage, NOW, world.lookups(), policy)
    assert isinstance(issue, Issue) and issue.fee_per_copy == 10 and issue.fee_yen == 20
    certificate = issue.disaster
    assert isinstance(certificate, DamageCertificate)
    assert (certificate.level, certificate.level_label, certificate.flood_depth) == (
        DamageLevel.HANKAI, "半壊", FloodDepth.ABOVE_FLOOR)
    assert (certificate.cause.name, certificate.cause.occurred_on, certificate.cause.kind_label) == (
        "令和8年紀伊半島沖地震", dt.date(2026, 11, 1), "地震")
    assert certificate.number.startswith(f"R-{TANABE}-0F1E2D3C-") and len(certificate.number) == 30
    assert (certificate.household_head_name, certificate.remarks) == ("田辺　一郎", "津波による浸水")
    reported = decide(affected, NOW, world.lookups(), policy)
    assert isinstance(reported, Issue) and isinstance(reported.disaster, AffectedCertificate)
    assert reported.disaster.reported == ("自動車（浸水）",) and reported.disaster.number.startswith("H-")
    # A municipality's own fee replaces the paper cost.
    fee = IssuancePolicy(fees=FeeTable(overrides={TANABE: {CertificateType.DISASTER_DAMAGE: 300}}))
    assert reason(decide(damage, NOW, world.lookups(), fee)) is ReasonCode.INSUFFICIENT_PAYMENT
    # Closed: the disaster is no longer open, whatever the ledger holds.
    world.disasters[TANABE] = []
    assert reason(decide(damage, NOW, world.lookups(), policy)) is ReasonCode.DISASTER_NOT_DECLARED


def test_the_certificate_is_about_the_latest_disaster_that_can_certify_it(card) -> None:
    record = resident()
    world = world_with(record)
    world.disasters[TANABE] = [EARTHQUAKE, FLOOD]
    code = record["resident_code"]
    world.ledger[(EARTHQUAKE.disaster_id, code)] = household_facts(EARTHQUAKE, damage_level=DamageLevel.ZENKAI)
    world.ledger[(FLOOD.disaster_id, code)] = household_facts(FLOOD)  # not surveyed yet
    damage = make_request(card, certificate_type="DISASTER_DAMAGE", paid_yen=10)
    issue = decide(damage, NOW, world.lookups(), IssuancePolicy())
    assert isinstance(issue, Issue) and isinstance(issue.disaster, DamageCertificate)
    assert issue.disaster.cause.name == EARTHQUAKE.name and issue.disaster.level is DamageLevel.ZENKAI
    world.ledger[(FLOOD.disaster_id, code)] = household_facts(FLOOD, damage_level=DamageLevel.JUN_HANKAI)
    issue = decide(damage, NOW, world.lookups(), IssuancePolicy())
    assert isinstance(issue, Issue) and isinstance(issue.disaster, DamageCertificate)
    assert issue.disaster.cause.name == FLOOD.name and issue.disaster.level is DamageLevel.JUN_HANKAI
    # The number: per municipality and disaster, the same when the request is decided again, not for another.
    again = decide(damage, NOW, world.lookups(), IssuancePolicy())
    other = decide(make_request(card, request_id="r2", certificate_type="DISASTER_DAMAGE", paid_yen=10), NOW,
                   world.lookups(), IssuancePolicy())
    assert isinstance(again, Issue) and isinstance(other, Issue)
    assert again.disaster == issue.disaster and other.disaster is not None
    assert other.disaster.number != issue.disaster.number
    assert other.disaster.number[:18] == issue.disaster.number[:18] == f"R-{TANABE}-9A8B7C6D-"


