"""The kiosk rules of docs/domain.md §3 (pure) and the request authentication of §4 (pure, real RSA keys)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from domain.certificate_serial import format_serial
from domain.certificate_types import CertificateType
from domain.errors import CertificateExpiredError, ForgedCertificateError, UnknownIssuerError
from domain.japan_time import JST
from domain.kiosk_rules import (
    MESSAGES,
    FeeTable,
    MaintenanceWindow,
    ReasonCode,
    check_certificate_content,
    check_certificate_type,
    check_copies,
    check_payment,
    check_resident,
    check_service_hours,
    choose_record,
    household_members,
    select_tax_year,
)
from domain.request_authentication import (
    AuthenticatedCard,
    Refusal,
    authenticate_request,
    check_freshness,
)
from tests.domain.conftest import CHECKED_AT
from tests.factories import make_resident


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=JST)


@pytest.mark.parametrize(("when", "code"), [
    (at(2026, 11, 20, 6, 29), ReasonCode.OUTSIDE_SERVICE_HOURS),
    (at(2026, 11, 20, 6, 30), None),
    (at(2026, 11, 20, 22, 59), None),
    (at(2026, 11, 20, 23, 0), ReasonCode.OUTSIDE_SERVICE_HOURS),
    (at(2026, 11, 22, 12, 0), None),  # Sunday: kiosks serve every day
    (at(2026, 12, 28, 22, 0), None),
    (at(2026, 12, 29, 12, 0), ReasonCode.YEAR_END_BREAK),
    (at(2027, 1, 3, 12, 0), ReasonCode.YEAR_END_BREAK),
    (at(2027, 1, 4, 6, 30), None),
])
def test_service_hours_in_japan_time(when: dt.datetime, code: ReasonCode | None) -> None:
    refusal = check_service_hours(when.astimezone(dt.UTC), "302066")
    assert (refusal.code if refusal else None) == code


def test_maintenance_window_applies_to_its_municipality_only() -> None:
    window = MaintenanceWindow("302066", at(2026, 11, 20, 9), at(2026, 11, 20, 10))
    assert check_service_hours(at(2026, 11, 20, 9, 30), "302066", [window]).code is ReasonCode.MAINTENANCE
    assert check_service_hours(at(2026, 11, 20, 9, 30), "131016", [window]) is None
    assert check_service_hours(at(2026, 11, 20, 10, 0), "302066", [window]) is None  # end excluded
    with pytest.raises(ValueError):
        MaintenanceWindow("302066", at(2026, 11, 20, 10), at(2026, 11, 20, 9))


def test_types_bcl_cannot_issue_and_disaster_certificates() -> None:
    for kind in (CertificateType.RESIDENT_RECORD_ITEMS, CertificateType.FAMILY_REGISTER,
                 CertificateType.FAMILY_REGISTER_ANNEX):
        refusal = check_certificate_type(kind, "302066")
        assert refusal is not None and refusal.code is ReasonCode.NOT_AVAILABLE_VIA_BCL
        assert refusal.message == ("この証明書はコンビニ交付（BCL）では発行できません。"
                                   "市区町村の窓口でお申し込みください。")
    damage = CertificateType.DISASTER_DAMAGE
    assert check_certificate_type(damage, "302066").code is ReasonCode.DISASTER_NOT_DECLARED
    assert check_certificate_type(damage, "302066", disaster_declared=True) is None
    assert check_certificate_type(CertificateType.RESIDENT_RECORD, "302066") is None


def test_every_reason_has_a_japanese_message() -> None:
    assert set(MESSAGES) == set(ReasonCode)
    assert all(any("\u3040" <= ch <= "\u30ff" for ch in m) for m in MESSAGES.values())


def test_copies_fees_and_payment() -> None:
    assert check_copies(0).code is ReasonCode.INVALID_COPIES
    assert check_copies(1) is None and check_copies(10) is None
    assert check_copies(11).code is ReasonCode.INVALID_COPIES
    fees = FeeTable(overrides={"131016": {CertificateType.RESIDENT_RECORD: 250}})
    assert fees.fee("302066", CertificateType.RESIDENT_RECORD) == 200
    assert fees.fee("131016", CertificateType.RESIDENT_RECORD) == 250
    assert fees.fee("131016", CertificateType.INCOME) == 300
    with pytest.raises(ValueError):
        fees.fee("302066", CertificateType.FAMILY_REGISTER)
    assert check_payment(250, 2, 500) is None
    assert check_payment(250, 2, 499).code is ReasonCode.INSUFFICIENT_PAYMENT


def test_eligibility() -> None:
    current = make_resident("302066", 1)
    deleted = make_resident("302066", 2, status="DELETED", deletion_reason="DEATH", deleted_on=dt.date(2026, 1, 1))
    assert check_resident(None, "302066").code is ReasonCode.NO_RESIDENT
    assert check_resident(current, "302066") is None
    assert check_resident(current, "131016").code is ReasonCode.OTHER_MUNICIPALITY
    assert check_resident(deleted, "302066").code is ReasonCode.RECORD_DELETED
    moved_to = make_resident("131016", 3)
    assert choose_record([deleted, moved_to]) is moved_to
    assert choose_record([deleted]) is deleted
    assert choose_record([]) is None
    # Two current records list the serial (issue 8.7): refused, never the first one.
    twice = choose_record([moved_to, current, deleted])
    assert isinstance(twice, Refusal) and twice.code is ReasonCode.AMBIGUOUS_CARD


def test_seal_and_tax_content() -> None:
    seal = {"registration_number": "1", "registered_on": dt.date(2020, 1, 1), "status": "REGISTERED",
            "impression_png": b""}
    tax = [{"fiscal_year": y, "income_yen": 1, "taxable_income_yen": 1, "tax_yen": 1, "tax_exempt": False,
            "paid_yen": 1, "payment_status": "PAID"} for y in (2025, 2026)]
    with_all = make_resident(seal=seal, tax_records=tax)
    abolished = make_resident(seal={**seal, "status": "ABOLISHED"})
    seal_kind = CertificateType.SEAL_REGISTRATION
    assert check_certificate_content(seal_kind, with_all, None) is None
    assert check_certificate_content(seal_kind, abolished, None).code is ReasonCode.NO_SEAL_REGISTRATION
    assert check_certificate_content(seal_kind, make_resident(), None).code is ReasonCode.NO_SEAL_REGISTRATION
    income = CertificateType.INCOME
    assert check_certificate_content(income, with_all, 2025) is None
    assert check_certificate_content(income, with_all, 2019).code is ReasonCode.NO_TAX_RECORD
    assert check_certificate_content(income, make_resident(), None).code is ReasonCode.NO_TAX_RECORD
    assert select_tax_year(with_all, None) == 2026 and select_tax_year(with_all, 2025) == 2025


def test_household_members_head_first_current_only() -> None:
    head = make_resident("302066", 3, birth_date=dt.date(1970, 1, 1))
    child = make_resident("302066", 4, relationship="子", birth_date=dt.date(2010, 1, 1))
    wife = make_resident("302066", 5, relationship="妻", birth_date=dt.date(1972, 1, 1))
    gone = make_resident("302066", 6, relationship="子", status="DELETED")
    other = make_resident("302066", 9)  # another household
    assert household_members(child, [head, child, wife, gone, other], whole_household=False) == [child]
    whole = household_members(child, [child, wife, gone, head, other], whole_household=True)
    assert [r["resident_code"] for r in whole] == [head["resident_code"], wife["resident_code"],
                                                   child["resident_code"]]


# -- authentication ---------------------------------------------------------------------------------

NOW = CHECKED_AT


def _authenticate(card: tuple[rsa.RSAPrivateKey, x509.Certificate], *, signed: bytes = b"challenge of r1",
                  check=lambda c, t: None, requested_at: dt.datetime = NOW) -> AuthenticatedCard | Refusal:
    key, cert = card
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return authenticate_request(challenge=b"challenge of r1", requested_at=requested_at,
                                certificate_der=cert.public_bytes(Encoding.DER), signature=signature,
                                verify_certificate=check, now=NOW)


def test_a_good_signature_authenticates_and_gives_the_register_serial(card) -> None:
    result = _authenticate(card)
    assert isinstance(result, AuthenticatedCard) and result.serial == "0000000000000abc" == format_serial(0xABC)


def test_signature_over_another_request_is_refused(card) -> None:
    result = _authenticate(card, signed=b"challenge of r2")
    assert isinstance(result, Refusal) and result.code is ReasonCode.BAD_SIGNATURE


@pytest.mark.parametrize(("error", "code"), [
    (UnknownIssuerError, ReasonCode.CERTIFICATE_UNTRUSTED),
    (ForgedCertificateError, ReasonCode.CERTIFICATE_FORGED),
    (CertificateExpiredError, ReasonCode.CERTIFICATE_EXPIRED),
])
def test_certificate_check_failures_become_refusals(card, error: type[Exception], code: ReasonCode) -> None:
    def check(certificate: x509.Certificate, when: dt.datetime) -> None:
        raise error("no")
    result = _authenticate(card, check=check)
    assert isinstance(result, Refusal) and result.code is code


def test_freshness_window() -> None:
    assert check_freshness(NOW - dt.timedelta(minutes=5), NOW) is None
    assert check_freshness(NOW - dt.timedelta(minutes=5, seconds=1), NOW).code is ReasonCode.REQUEST_EXPIRED
    assert check_freshness(NOW + dt.timedelta(minutes=6), NOW).code is ReasonCode.REQUEST_EXPIRED


def test_garbage_certificate_is_refused() -> None:
    result = authenticate_request(challenge=b"r1", requested_at=NOW, certificate_der=b"\x30\x03abc",
                                  signature=b"", verify_certificate=lambda c, t: None, now=NOW)
    assert isinstance(result, Refusal) and result.code is ReasonCode.MALFORMED_CERTIFICATE
