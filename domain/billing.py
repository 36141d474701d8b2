"""Billing statements of docs/domain.md §5 as plain values (no I/O): billing months and fiscal years, the monthly
settlement of a municipality (fees collected at kiosks, consignment fees, net income) and the charges settled
at fiscal-year end (BCL issuing fee, operating contribution, disaster-system fee) under the municipality's
participation (issuing mode, month of joining, start of the disaster-victim support system).

The amounts come from domain.fees; this module decides which rule applies to which period.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.certificate_types import ISSUED_VIA_BCL, TITLES, CertificateType
from domain.codes import is_valid_municipality_code
from domain.fees import (
    FISCAL_YEAR_FIRST_MONTH,
    FeeError,
    IssuingMode,
    MunicipalityClass,
    billed_contribution,
    billed_disaster_system_fee,
    certificate_fees,
    months_of_participation,
)

# The kiosk operators' names in Japanese where known; any other vendor is printed as the event names it.
VENDOR_LABELS: dict[str, str] = {
    "Seven-Eleven": "セブン-イレブン",
    "Lawson": "ローソン",
    "FamilyMart": "ファミリーマート",
    "Ministop": "ミニストップ",
    "Japan Post": "日本郵便",
    "Town hall terminal": "庁舎設置端末",
    "Supermarket": "スーパーマーケット",
}

_MONTH_TEXT = re.compile(r"^(\d{4})-(\d{2})$")


def certificate_rejection(event: Mapping[str, Any]) -> str | None:
    """Why a decoded CertificateIssued event cannot be billed, or None when it can. Reasons carry no personal
    data (the event has none)."""
    if not str(event.get("certificate_id", "")).strip():
        return "certificate_id is empty"
    for name in ("municipality_code", "kiosk_municipality_code"):
        if not is_valid_municipality_code(str(event.get(name, ""))):
            return f"{name} {event.get(name)!r} is not a valid municipality code (check digit)"
    copies, copy_number = event.get("copies", 0), event.get("copy_number", 0)
    if not 1 <= copy_number <= copies:
        return f"copy_number {copy_number} is not within 1..copies ({copies})"
    if event.get("pages", 0) < 1:
        return f"pages must be at least 1, got {event.get('pages')}"
    if event.get("fee_yen", -1) < 0:
        return f"fee_yen cannot be negative, got {event.get('fee_yen')}"
    issued_at = event.get("issued_at")
    if not isinstance(issued_at, dt.datetime) or issued_at.tzinfo is None:
        return "issued_at is not an aware instant"
    return None


def type_label(certificate_type: str) -> str:
    """The certificate as a clerk knows it (住民票の写し...); an unknown type as the event names it."""
    return TITLES.get(certificate_type, certificate_type)  # type: ignore[call-overload]  # str finds its member


def vendor_label(vendor: str) -> str:
    return VENDOR_LABELS.get(vendor, vendor)


@dataclass(frozen=True, order=True)
class BillingMonth:
    """A calendar month in Japan time (the month a certificate is billed in is the month it was printed)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise FeeError(f"a month is 1–12, got {self.month}")

    @classmethod
    def parse(cls, text: str) -> BillingMonth:
        """YYYY-MM, e.g. 2025-11."""
        match = _MONTH_TEXT.match(text.strip())
        if match is None:
            raise FeeError(f"a billing month is written YYYY-MM (e.g. 2025-11), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @property
    def fiscal_year(self) -> int:
        return self.year if self.month >= FISCAL_YEAR_FIRST_MONTH else self.year - 1

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        following = dt.date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def fiscal_year_months(fiscal_year: int) -> tuple[BillingMonth, ...]:
    """April of the fiscal year through March of the next calendar year."""
    return tuple(BillingMonth(fiscal_year + (m < FISCAL_YEAR_FIRST_MONTH), m) for m in (*range(4, 13), 1, 2, 3))


def fiscal_year_bounds(fiscal_year: int) -> tuple[dt.date, dt.date]:
    return dt.date(fiscal_year, 4, 1), dt.date(fiscal_year + 1, 3, 31)


def population_basis_date(fiscal_year: int) -> dt.date:
    """The day the disaster-system fee's population is taken: 1 January of the previous fiscal year (the
    1 January that falls inside it, i.e. the last one before the billed fiscal year starts)."""
    return dt.date(fiscal_year, 1, 1)


@dataclass(frozen=True)
class CertificateCount:
    """Certificates of one municipality in one month, of one type, printed at one vendor's kiosks."""

    month: BillingMonth
    certificate_type: str
    kiosk_vendor: str
    certificates: int
    fees_collected: int  # sum of the kiosk fees (交付手数料) of these certificates, yen


@dataclass(frozen=True)
class Settlement:
    """The monthly settlement: fees collected at the kiosk minus the consignment fee (117 per certificate)
    is the municipality's income. bcl_fee_accrued (180 per certificate) is only settled at fiscal-year end."""

    certificates: int
    fees_collected: int
    consignment_fee: int
    net_income: int
    bcl_fee_accrued: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def settle(certificates: int, fees_collected: int) -> Settlement:
    fees = certificate_fees(certificates)
    return Settlement(certificates, fees_collected, fees.consignment_fee, fees_collected - fees.consignment_fee,
                      fees.bcl_fee)


def settle_counts(counts: Iterable[CertificateCount]) -> Settlement:
    rows = list(counts)
    return settle(sum(c.certificates for c in rows), sum(c.fees_collected for c in rows))


@dataclass(frozen=True)
class Participation:
    """How a municipality takes part. joined: the first month issuing through BCL (None: since before any
    fiscal year billed here). disaster_system: whether it uses the cloud disaster-victim support system,
    from disaster_system_from (None: from joining)."""

    mode: IssuingMode = IssuingMode.BCL
    joined: BillingMonth | None = None
    disaster_system: bool = True
    disaster_system_from: BillingMonth | None = None

    def disaster_system_start(self) -> BillingMonth | None:
        return self.disaster_system_from or self.joined


@dataclass(frozen=True)
class FiscalYearCharges:
    """Settled at fiscal-year end. *_months: months billed (12 = the whole year, 0 = not taking part)."""

    bcl_fee: int
    contribution: int
    contribution_months: int
    disaster_system_fee: int
    disaster_system_months: int

    @property
    def total(self) -> int:
        return self.bcl_fee + self.contribution + self.disaster_system_fee


def _months_in_year(start: BillingMonth | None, fiscal_year: int) -> int:
    """Months of the fiscal year from start (included) through March: 12 when started earlier, 0 when later."""
    if start is None or start.fiscal_year < fiscal_year:
        return 12
    if start.fiscal_year > fiscal_year:
        return 0
    return months_of_participation(start.month)


def fiscal_year_charges(
    fiscal_year: int,
    certificates: int,
    municipality_class: MunicipalityClass,
    population: int,
    participation: Participation,
) -> FiscalYearCharges:
    """The year-end charges of one fiscal year. The contribution is pro-rated in the joining year and not
    charged before it; the disaster-system fee likewise from the system's start month."""
    contribution_months = _months_in_year(participation.joined, fiscal_year)
    if contribution_months == 0:
        contribution = 0
    else:
        joined = participation.joined
        join_month = joined.month if joined is not None and joined.fiscal_year == fiscal_year else None
        contribution = billed_contribution(municipality_class, population, participation.mode, fiscal_year,
                                           join_month)
    start = participation.disaster_system_start()
    disaster_months = _months_in_year(start, fiscal_year) if participation.disaster_system else 0
    if disaster_months == 0:
        disaster_fee = 0
    else:
        start_month = start.month if start is not None and start.fiscal_year == fiscal_year else None
        disaster_fee = billed_disaster_system_fee(population, start_month)
    return FiscalYearCharges(certificate_fees(certificates).bcl_fee, contribution, contribution_months,
                             disaster_fee, disaster_months)


@dataclass(frozen=True)
class MunicipalityInfo:
    code: str
    name: str
    prefecture: str
    municipality_class: MunicipalityClass
    population: int
    population_year: int | None  # the year of the population figure in the reference data


@dataclass(frozen=True)
class MonthlyStatement:
    municipality: MunicipalityInfo
    month: BillingMonth
    counts: tuple[CertificateCount, ...]
    issued_on: dt.date

    @property
    def settlement(self) -> Settlement:
        return settle_counts(self.counts)

    def by_type(self) -> dict[str, Settlement]:
        return _grouped(self.counts, lambda c: c.certificate_type, _type_order)

    def by_vendor(self) -> dict[str, Settlement]:
        return _grouped(self.counts, lambda c: c.kiosk_vendor)

    def vendors(self) -> list[str]:
        return sorted({c.kiosk_vendor for c in self.counts})

    def count(self, certificate_type: str, vendor: str) -> int:
        return sum(c.certificates for c in self.counts if c.certificate_type == certificate_type
                   and c.kiosk_vendor == vendor)

    def totals(self) -> dict[str, Any]:
        """The machine-readable totals (the JSON the CLI prints)."""
        return {
            "municipality_code": self.municipality.code,
            "municipality_name": self.municipality.name,
            "period": str(self.month),
            **self.settlement.as_dict(),
            "by_type": {t: s.as_dict() for t, s in self.by_type().items()},
            "by_vendor": {v: s.as_dict() for v, s in self.by_vendor().items()},
        }


@dataclass(frozen=True)
class FiscalYearStatement:
    municipality: MunicipalityInfo
    fiscal_year: int
    counts: tuple[CertificateCount, ...]
    participation: Participation
    issued_on: dt.date
    charges: FiscalYearCharges = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "charges", fiscal_year_charges(
            self.fiscal_year, self.settlement.certificates, self.municipality.municipality_class,
            self.municipality.population, self.participation))

    @property
    def settlement(self) -> Settlement:
        return settle_counts(self.counts)

    def by_month(self) -> list[tuple[BillingMonth, Settlement]]:
        months = fiscal_year_months(self.fiscal_year)
        return [(m, settle_counts(c for c in self.counts if c.month == m)) for m in months]

    def by_type(self) -> dict[str, Settlement]:
        return _grouped(self.counts, lambda c: c.certificate_type, _type_order)

    def by_vendor(self) -> dict[str, Settlement]:
        return _grouped(self.counts, lambda c: c.kiosk_vendor)

    def totals(self) -> dict[str, Any]:
        charges = self.charges
        return {
            "municipality_code": self.municipality.code,
            "municipality_name": self.municipality.name,
            "fiscal_year": self.fiscal_year,
            **self.settlement.as_dict(),
            "bcl_fee": charges.bcl_fee,
            "contribution": charges.contribution,
            "contribution_months": charges.contribution_months,
            "disaster_system_fee": charges.disaster_system_fee,
            "disaster_system_months": charges.disaster_system_months,
            "year_end_total": charges.total,
            "municipality_class": str(self.municipality.municipality_class),
            "mode": str(self.participation.mode),
            "population": self.municipality.population,
            "population_basis_date": population_basis_date(self.fiscal_year).isoformat(),
            "population_figure_year": self.municipality.population_year,
            "by_month": {str(m): s.as_dict() for m, s in self.by_month()},
            "by_type": {t: s.as_dict() for t, s in self.by_type().items()},
            "by_vendor": {v: s.as_dict() for v, s in self.by_vendor().items()},
        }


def _type_order(certificate_type: str) -> tuple[int, str]:
    """The contract's order (住民票 first), unknown types last."""
    order = [t.value for t in CertificateType if t in ISSUED_VIA_BCL]
    return (order.index(certificate_type) if certificate_type in order else len(order), certificate_type)


def _grouped(counts: Iterable[CertificateCount], key: Any, order: Any = None) -> dict[str, Settlement]:
    groups: dict[str, list[CertificateCount]] = defaultdict(list)
    for c in counts:
        groups[key(c)].append(c)
    return {k: settle_counts(groups[k]) for k in sorted(groups, key=order)}
