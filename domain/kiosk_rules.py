"""The rules a kiosk request must pass before a certificate is issued (docs/domain.md §3). Pure: no I/O.
domain.issuance_decision applies them, with the card check, in the order of §3.

Every refusal is a typed `Refusal`: a machine-readable reason code (CertificateResponse.reason_code)
and a Japanese message the kiosk shows to the resident. Messages never contain personal data.

- Service hours: 06:30–23:00 Japan time every day, except the year-end break 29 Dec – 3 Jan, and
  except the municipality's maintenance windows (passed in as intervals).
- Types BCL cannot issue (住民票記載事項証明書, 戸籍証明書, 戸籍の附票の写し): NOT_AVAILABLE_VIA_BCL.
- Disaster certificates (罹災証明書, 被災証明書): only while a disaster is declared (and not closed) for the
  municipality (DISASTER_NOT_DECLARED); then the household must be in that disaster's ledger
  (NOT_IN_DISASTER_LEDGER), its dwelling surveyed for a 罹災証明書 (DAMAGE_NOT_ASSESSED) and damage reported
  for a 被災証明書 (DAMAGE_NOT_REPORTED): domain.disaster_certificate.choose_disaster.
- Eligibility: a current resident of the requested municipality; seal certificate only with a valid
  registration; tax certificates need the fiscal year's record.
- Copies 1–10; fee per municipality and type (kiosk fees 200–300 yen, a default table and overrides);
  paid_yen must cover fee × copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from domain.certificate_types import (
    DISASTER_CERTIFICATES,
    NOT_AVAILABLE_VIA_BCL,
    TAX_CERTIFICATES,
    CertificateType,
)
from domain.japan_time import to_japan_time
from domain.office_hours import is_year_end_break

SERVICE_OPENS = dt.time(6, 30)
SERVICE_CLOSES = dt.time(23, 0)
MIN_COPIES = 1
MAX_COPIES = 10
# The two issuing centres of J-LIS; each kiosk vendor is assigned one (the CertificateRequest's centre).
ISSUING_CENTRES = ("EAST", "WEST")

Resident = Mapping[str, Any]  # a decoded jp.bcl.register.Resident


class ReasonCode(StrEnum):
    """Why a request was refused (CertificateResponse.reason_code)."""

    # the request itself
    INVALID_REQUEST = "INVALID_REQUEST"
    REPLAYED_REQUEST = "REPLAYED_REQUEST"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    INVALID_COPIES = "INVALID_COPIES"
    INSUFFICIENT_PAYMENT = "INSUFFICIENT_PAYMENT"
    # the card (JPKI user-authentication certificate and the challenge signature)
    MALFORMED_CERTIFICATE = "MALFORMED_CERTIFICATE"
    CERTIFICATE_UNTRUSTED = "CERTIFICATE_UNTRUSTED"
    CERTIFICATE_FORGED = "CERTIFICATE_FORGED"
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    CERTIFICATE_NOT_YET_VALID = "CERTIFICATE_NOT_YET_VALID"
    WRONG_CERTIFICATE = "WRONG_CERTIFICATE"
    CARD_REVOKED = "CARD_REVOKED"
    CERTIFICATE_UNKNOWN = "CERTIFICATE_UNKNOWN"
    REVOCATION_UNAVAILABLE = "REVOCATION_UNAVAILABLE"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    # service
    OUTSIDE_SERVICE_HOURS = "OUTSIDE_SERVICE_HOURS"
    YEAR_END_BREAK = "YEAR_END_BREAK"
    MAINTENANCE = "MAINTENANCE"
    UNKNOWN_MUNICIPALITY = "UNKNOWN_MUNICIPALITY"
    # the certificate asked for
    NOT_AVAILABLE_VIA_BCL = "NOT_AVAILABLE_VIA_BCL"
    DISASTER_NOT_DECLARED = "DISASTER_NOT_DECLARED"
    NOT_IN_DISASTER_LEDGER = "NOT_IN_DISASTER_LEDGER"
    DAMAGE_NOT_ASSESSED = "DAMAGE_NOT_ASSESSED"
    DAMAGE_NOT_REPORTED = "DAMAGE_NOT_REPORTED"
    # eligibility
    NO_RESIDENT = "NO_RESIDENT"
    AMBIGUOUS_CARD = "AMBIGUOUS_CARD"
    OTHER_MUNICIPALITY = "OTHER_MUNICIPALITY"
    RECORD_DELETED = "RECORD_DELETED"
    NO_SEAL_REGISTRATION = "NO_SEAL_REGISTRATION"
    NO_TAX_RECORD = "NO_TAX_RECORD"
    # the issuing centre
    ISSUE_FAILED = "ISSUE_FAILED"


_COUNTER = "市区町村の窓口でお問い合わせください。"
MESSAGES: Mapping[ReasonCode, str] = MappingProxyType({
    ReasonCode.INVALID_REQUEST: "申請内容に誤りがあります。最初からやり直してください。",
    ReasonCode.REPLAYED_REQUEST: "この申請はすでに受け付けられています。最初からやり直してください。",
    ReasonCode.REQUEST_EXPIRED: "申請の有効時間を過ぎました。最初からやり直してください。",
    ReasonCode.INVALID_COPIES: f"一度に発行できる通数は{MIN_COPIES}通から{MAX_COPIES}通までです。",
    ReasonCode.INSUFFICIENT_PAYMENT: "お支払い金額が手数料に足りません。お支払い金額は返金されます。",
    ReasonCode.MALFORMED_CERTIFICATE: "マイナンバーカードの電子証明書を読み取れませんでした。" + _COUNTER,
    ReasonCode.CERTIFICATE_UNTRUSTED: "このカードの電子証明書は利用できません。" + _COUNTER,
    ReasonCode.CERTIFICATE_FORGED: "このカードの電子証明書は利用できません。" + _COUNTER,
    ReasonCode.CERTIFICATE_EXPIRED:
        "利用者証明用電子証明書の有効期限が切れています。市区町村の窓口で更新してください。",
    ReasonCode.CERTIFICATE_NOT_YET_VALID: "利用者証明用電子証明書はまだ有効になっていません。" + _COUNTER,
    ReasonCode.WRONG_CERTIFICATE: "このカードの電子証明書は利用者証明用ではありません。" + _COUNTER,
    ReasonCode.CARD_REVOKED: "利用者証明用電子証明書が失効しています。" + _COUNTER,
    ReasonCode.CERTIFICATE_UNKNOWN: "利用者証明用電子証明書を確認できませんでした。" + _COUNTER,
    ReasonCode.REVOCATION_UNAVAILABLE: "ただいま電子証明書を確認できません。しばらくしてからお試しください。",
    ReasonCode.BAD_SIGNATURE: "本人確認ができませんでした。カードを挿し直して最初からやり直してください。",
    ReasonCode.OUTSIDE_SERVICE_HOURS: "サービス提供時間外です。ご利用時間は6時30分から23時までです。",
    ReasonCode.YEAR_END_BREAK: "年末年始（12月29日から1月3日まで）はご利用いただけません。",
    ReasonCode.MAINTENANCE:
        "ただいまこの市区町村の証明書はシステムの保守のため発行できません。時間をおいてお試しください。",
    ReasonCode.UNKNOWN_MUNICIPALITY: "選択された市区町村の証明書はこの端末では発行できません。",
    ReasonCode.NOT_AVAILABLE_VIA_BCL:
        "この証明書はコンビニ交付（BCL）では発行できません。市区町村の窓口でお申し込みください。",
    ReasonCode.DISASTER_NOT_DECLARED: "罹災証明書・被災証明書は災害の発生時にのみ発行できます。" + _COUNTER,
    ReasonCode.NOT_IN_DISASTER_LEDGER:
        "被災者台帳に世帯の記載がないため、罹災証明書・被災証明書を発行できません。" + _COUNTER,
    ReasonCode.DAMAGE_NOT_ASSESSED: "住家の被害認定調査が終わっていないため、罹災証明書を発行できません。" + _COUNTER,
    ReasonCode.DAMAGE_NOT_REPORTED: "被害の届出がないため、被災証明書を発行できません。" + _COUNTER,
    ReasonCode.NO_RESIDENT: "このカードに対応する住民票が見つかりません。" + _COUNTER,
    ReasonCode.AMBIGUOUS_CARD: "このカードに対応する住民票を特定できません。" + _COUNTER,
    ReasonCode.OTHER_MUNICIPALITY: "選択された市区町村に住民登録がありません。お住まいの市区町村を選択してください。",
    ReasonCode.RECORD_DELETED: "住民票が消除されているため、証明書を発行できません。" + _COUNTER,
    ReasonCode.NO_SEAL_REGISTRATION: "印鑑登録がないため、印鑑登録証明書を発行できません。" + _COUNTER,
    ReasonCode.NO_TAX_RECORD: "ご指定の年度の税証明書を発行できません。" + _COUNTER,
    ReasonCode.ISSUE_FAILED: "証明書を発行できませんでした。お支払い金額は返金されます。" + _COUNTER,
})


@dataclass(frozen=True)
class Refusal:
    """A refused request: reason code, the kiosk's message, and a detail for the operator's log
    (never personal data)."""

    code: ReasonCode
    message: str
    detail: str = ""


def refusal(code: ReasonCode, detail: str = "") -> Refusal:
    return Refusal(code, MESSAGES[code], detail)


# -- service hours -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceWindow:
    """A municipality's scheduled maintenance: requests in [start, end) are refused."""

    municipality_code: str
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("maintenance window times must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"maintenance window ends ({self.end}) before it starts ({self.start})")

    def covers(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


def check_service_hours(at: dt.datetime, municipality_code: str,
                        maintenance: Sequence[MaintenanceWindow] = ()) -> Refusal | None:
    """Whether the municipality's certificates can be issued at `at` (aware)."""
    local = to_japan_time(at)
    if is_year_end_break(local.date()):
        return refusal(ReasonCode.YEAR_END_BREAK, f"{local:%m-%d} is in the year-end break")
    if not SERVICE_OPENS <= local.time() < SERVICE_CLOSES:
        return refusal(ReasonCode.OUTSIDE_SERVICE_HOURS,
                       f"{local:%H:%M} JST is outside {SERVICE_OPENS:%H:%M}-{SERVICE_CLOSES:%H:%M}")
    for window in maintenance:
        if window.municipality_code == municipality_code and window.covers(at):
            return refusal(ReasonCode.MAINTENANCE, f"maintenance {window.start.isoformat()}-{window.end.isoformat()}")
    return None


# -- what can be issued --------------------------------------------------------------------------


def check_certificate_type(kind: CertificateType, municipality_code: str,
                           disaster_declared: bool = False) -> Refusal | None:
    """disaster_declared: whether a disaster is open (declared, not closed) for the municipality."""
    if kind in NOT_AVAILABLE_VIA_BCL:
        return refusal(ReasonCode.NOT_AVAILABLE_VIA_BCL, f"{kind} is never issued through BCL")
    if kind in DISASTER_CERTIFICATES and not disaster_declared:
        return refusal(ReasonCode.DISASTER_NOT_DECLARED, f"no declared disaster in {municipality_code}")
    return None


def check_copies(copies: int) -> Refusal | None:
    if not MIN_COPIES <= copies <= MAX_COPIES:
        return refusal(ReasonCode.INVALID_COPIES, f"{copies} copies asked")
    return None


# -- fees --------------------------------------------------------------------------------------

# Kiosk fees are often lower than at the counter (docs/domain.md §3): 200 yen for 住民票 and 印鑑, 300 for
# tax certificates; disaster certificates cost 10 yen of paper unless the municipality sets a fee.
DEFAULT_FEES: Mapping[CertificateType, int] = MappingProxyType({
    CertificateType.RESIDENT_RECORD: 200,
    CertificateType.SEAL_REGISTRATION: 200,
    CertificateType.INCOME: 300,
    CertificateType.TAXATION: 300,
    CertificateType.TAX_PAYMENT: 300,
    CertificateType.DISASTER_DAMAGE: 10,
    CertificateType.DISASTER_AFFECTED: 10,
})


@dataclass(frozen=True)
class FeeTable:
    """Issuance fee (交付手数料) per certificate: the default table, overridden per municipality."""

    default: Mapping[CertificateType, int] = field(default_factory=lambda: DEFAULT_FEES)
    overrides: Mapping[str, Mapping[CertificateType, int]] = field(default_factory=dict)

    def fee(self, municipality_code: str, kind: CertificateType) -> int:
        own = self.overrides.get(municipality_code, {})
        if kind in own:
            return own[kind]
        if kind not in self.default:
            raise ValueError(f"no fee for {kind}: it is not issued through BCL")
        return self.default[kind]


def check_payment(fee_per_copy: int, copies: int, paid_yen: int) -> Refusal | None:
    due = fee_per_copy * copies
    if paid_yen < due:
        return refusal(ReasonCode.INSUFFICIENT_PAYMENT, f"paid {paid_yen} yen, due {due} yen")
    return None


# -- eligibility -------------------------------------------------------------------------------


def choose_record(records: Sequence[Resident]) -> Resident | Refusal | None:
    """Of the records a certificate serial links to (a person who moved keeps a deleted record in the
    former municipality), the current one, else the most recently deleted one. Two current records with
    the serial are refused (AMBIGUOUS_CARD), never guessed between: one of them is not the card holder's,
    and issuing from the wrong one would hand a stranger's certificate over."""
    current = [r for r in records if r.get("status") == "CURRENT"]
    if len(current) > 1:
        return refusal(ReasonCode.AMBIGUOUS_CARD, f"{len(current)} current records list the certificate serial")
    if current:
        return current[0]
    deleted = sorted(records, key=lambda r: r.get("deleted_on") or dt.date.min)
    return deleted[-1] if deleted else None


def check_resident(record: Resident | None, municipality_code: str) -> Refusal | None:
    """The requester must be a current resident of the municipality asked to issue."""
    if record is None:
        return refusal(ReasonCode.NO_RESIDENT, "no register record links to the certificate serial")
    if record["municipality_code"] != municipality_code:
        return refusal(ReasonCode.OTHER_MUNICIPALITY,
                       f"resident of {record['municipality_code']}, asked {municipality_code}")
    if record.get("status") != "CURRENT":
        return refusal(ReasonCode.RECORD_DELETED, f"record deleted ({record.get('deletion_reason')})")
    return None


def select_tax_year(record: Resident, fiscal_year: int | None) -> int | None:
    """The fiscal year a tax certificate will show: the one asked for if the record has it, else the
    latest assessed year; None when there is nothing to certify."""
    years = sorted(int(t["fiscal_year"]) for t in record.get("tax_records") or [])
    if not years:
        return None
    if fiscal_year is None:
        return years[-1]
    return fiscal_year if fiscal_year in years else None


def check_certificate_content(kind: CertificateType, record: Resident, fiscal_year: int | None) -> Refusal | None:
    """What the chosen certificate needs from the requester's record."""
    if kind is CertificateType.SEAL_REGISTRATION:
        seal = record.get("seal")
        if seal is None or seal.get("status") != "REGISTERED":
            return refusal(ReasonCode.NO_SEAL_REGISTRATION, "no valid seal registration")
    if kind in TAX_CERTIFICATES and select_tax_year(record, fiscal_year) is None:
        asked = "the latest year" if fiscal_year is None else f"fiscal year {fiscal_year}"
        return refusal(ReasonCode.NO_TAX_RECORD, f"no tax record for {asked}")
    return None


def household_members(requester: Resident, household: Sequence[Resident], whole_household: bool) -> list[Resident]:
    """The members a 住民票の写し shows: the requester alone, or every current member of the
    requester's household, the head first, then by birth date."""
    if not whole_household:
        return [requester]
    members = {r["resident_code"]: r for r in household
               if r.get("status") == "CURRENT" and r.get("household_number") == requester.get("household_number")
               and r["municipality_code"] == requester["municipality_code"]}
    members[requester["resident_code"]] = requester
    return sorted(members.values(), key=lambda r: (r.get("relationship") != "世帯主",
                                                   r.get("birth_date") or dt.date.min, r["resident_code"]))
