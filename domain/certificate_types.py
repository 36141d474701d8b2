"""The certificates a resident can ask for at a kiosk, and which of them BCL issues (docs/domain.md §3).

One enum for every part of the project: the kiosk's choice and its rules, the document layouts, fees,
billing and the published statistics. Its values are the symbols of the Avro contracts: every member is
a RequestedCertificate symbol (certificate_request.avsc), and the members BCL issues (ISSUED_VIA_BCL)
are the CertificateType symbols of certificate_issued.avsc. Being a StrEnum, a member equals the symbol
string a decoded event carries, so either can key the mappings here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class CertificateType(StrEnum):
    RESIDENT_RECORD = "RESIDENT_RECORD"  # 住民票の写し
    SEAL_REGISTRATION = "SEAL_REGISTRATION"  # 印鑑登録証明書
    INCOME = "INCOME"  # 所得証明書
    TAXATION = "TAXATION"  # 課税(非課税)証明書
    TAX_PAYMENT = "TAX_PAYMENT"  # 納税証明書
    DISASTER_DAMAGE = "DISASTER_DAMAGE"  # 罹災証明書
    DISASTER_AFFECTED = "DISASTER_AFFECTED"  # 被災証明書
    RESIDENT_RECORD_ITEMS = "RESIDENT_RECORD_ITEMS"  # 住民票記載事項証明書 (not via BCL)
    FAMILY_REGISTER = "FAMILY_REGISTER"  # 戸籍証明書 (not via BCL)
    FAMILY_REGISTER_ANNEX = "FAMILY_REGISTER_ANNEX"  # 戸籍の附票の写し (not via BCL)


# The names a clerk and a resident know them by.
TITLES: Mapping[CertificateType, str] = MappingProxyType({
    CertificateType.RESIDENT_RECORD: "住民票の写し",
    CertificateType.SEAL_REGISTRATION: "印鑑登録証明書",
    CertificateType.INCOME: "所得証明書",
    CertificateType.TAXATION: "課税(非課税)証明書",
    CertificateType.TAX_PAYMENT: "納税証明書",
    CertificateType.DISASTER_DAMAGE: "罹災証明書",
    CertificateType.DISASTER_AFFECTED: "被災証明書",
    CertificateType.RESIDENT_RECORD_ITEMS: "住民票記載事項証明書",
    CertificateType.FAMILY_REGISTER: "戸籍証明書",
    CertificateType.FAMILY_REGISTER_ANNEX: "戸籍の附票の写し",
})

NOT_AVAILABLE_VIA_BCL = frozenset({
    CertificateType.RESIDENT_RECORD_ITEMS,
    CertificateType.FAMILY_REGISTER,
    CertificateType.FAMILY_REGISTER_ANNEX,
})
ISSUED_VIA_BCL = frozenset(set(CertificateType) - NOT_AVAILABLE_VIA_BCL)
# Issued only while a disaster is declared for the municipality.
DISASTER_CERTIFICATES = frozenset({CertificateType.DISASTER_DAMAGE, CertificateType.DISASTER_AFFECTED})
TAX_CERTIFICATES = frozenset({CertificateType.INCOME, CertificateType.TAXATION, CertificateType.TAX_PAYMENT})
# What BCL issues in ordinary times, in the order of the operator's tables.
ORDINARY_CERTIFICATES: tuple[CertificateType, ...] = tuple(
    t for t in CertificateType if t in ISSUED_VIA_BCL and t not in DISASTER_CERTIFICATES
)
