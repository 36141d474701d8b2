"""Definitions behind the published statistics of docs/domain.md §7 (no I/O).

- Office hours (窓口時間) and office days: domain.office_hours. Everything else is "outside office hours".
- Issued in another municipality (他市区町村): the kiosk stands outside the issuing municipality.
- The published certificate categories (住民票, 住記載, 印鑑, 税, 戸籍, 附票) and how the certificate types of
  the CertificateIssued contract map onto them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from domain.certificate_types import DISASTER_CERTIFICATES, TAX_CERTIFICATES, CertificateType
from domain.fees import FISCAL_YEAR_FIRST_MONTH

# The published categories, in the order of the operator's tables. 住記載 (住民票記載事項証明書), 戸籍 and 附票
# are never issued through BCL, so their counts are 0 in BCL's figures; they are kept so that the tables
# line up with the operator's publications. OTHER holds the disaster certificates, which are not among them.
RESIDENT_RECORD = "住民票"
RESIDENT_ITEMS = "住記載"
SEAL = "印鑑"
TAX = "税"
FAMILY_REGISTER = "戸籍"
FAMILY_REGISTER_ANNEX = "附票"
OTHER = "その他"
CATEGORIES: tuple[str, ...] = (
    RESIDENT_RECORD, RESIDENT_ITEMS, SEAL, TAX, FAMILY_REGISTER, FAMILY_REGISTER_ANNEX, OTHER,
)

# Every type BCL issues (the CertificateIssued symbols); a StrEnum key also finds the symbol string.
CATEGORY_OF_TYPE: Mapping[CertificateType, str] = MappingProxyType({
    CertificateType.RESIDENT_RECORD: RESIDENT_RECORD,
    CertificateType.SEAL_REGISTRATION: SEAL,
    **{t: TAX for t in sorted(TAX_CERTIFICATES)},
    **{t: OTHER for t in sorted(DISASTER_CERTIFICATES)},
})


def category_of(certificate_type: str) -> str:
    """The published category of a CertificateIssued certificate_type."""
    try:
        return CATEGORY_OF_TYPE[certificate_type]  # type: ignore[index]  # a str finds its StrEnum member
    except KeyError:
        raise ValueError(f"unknown certificate type {certificate_type!r}") from None


def fiscal_year_of(day: date) -> int:
    """The fiscal year (年度, April–March) a day belongs to, named by the year it starts in."""
    return day.year if day.month >= FISCAL_YEAR_FIRST_MONTH else day.year - 1
