"""Billing statements a municipal clerk can read: a Japanese A4 PDF (IPAex Gothic headings, IPAex Mincho body)
and a CSV of the same figures (UTF-8 with BOM, so that spreadsheet programs in Japan open it as UTF-8).

Monthly statement (月次): the settlement of the month (kiosk fees collected, consignment fee, net income), the
BCL issuing fee accrued for the year-end settlement, and the counts by certificate type and kiosk vendor.
Fiscal-year statement (年度): the year-end charges (BCL issuing fee, operating contribution, disaster-system
fee) with how each was computed, the month-by-month settlements and the counts by type and vendor.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace

from domain.billing import (
    FiscalYearStatement,
    MonthlyStatement,
    Settlement,
    fiscal_year_bounds,
    population_basis_date,
    settle,
    type_label,
    vendor_label,
)
from domain.fees import (
    BCL_FEE_PER_CERTIFICATE,
    CONSIGNMENT_FEE_PER_CERTIFICATE,
    DISASTER_SYSTEM_BASE_FEE,
    DISASTER_SYSTEM_FEE_PER_RESIDENT,
    IssuingMode,
    MunicipalityClass,
)
from domain.japanese_date import ERAS, format_japanese_date, format_western_date, to_era

Statement = MonthlyStatement | FiscalYearStatement

TITLE = "証明書コンビニ交付 利用料金明細書"
ISSUER = "BCL（証明書交付センター）"

CLASS_LABELS = {
    MunicipalityClass.DESIGNATED_CITY: "政令指定都市",
    MunicipalityClass.CITY: "市",
    MunicipalityClass.SPECIAL_WARD: "特別区",
    MunicipalityClass.TOWN: "町",
    MunicipalityClass.VILLAGE: "村",
}
MODE_LABELS = {IssuingMode.BCL: "BCL経由で発行", IssuingMode.OWN: "自団体の証明書交付サーバで発行"}

CSV_COLUMNS = ("区分", "項目", "件数", "交付手数料（円）", "委託手数料（円）", "差引収入（円）", "請求額（円）")

_GREY = (235, 235, 235)


def _yen(amount: int) -> str:
    return f"{amount:,}"


def _era_year(era: str, year: int) -> str:
    return f"{era}{'元' if year == 1 else year}年"


def month_label(statement: MonthlyStatement) -> str:
    """令和7年11月分（2025年11月1日～2025年11月30日）"""
    month = statement.month
    era = to_era(month.first_day)
    return (f"{_era_year(era.era, era.year)}{month.month}月分（{format_western_date(month.first_day)}～"
            f"{format_western_date(month.last_day)}）")


def fiscal_year_label(fiscal_year: int) -> str:
    """令和7年度（2025年4月1日～2026年3月31日）. A year in which an era began is named in the new era
    (令和元年度), as the government does."""
    first, last = fiscal_year_bounds(fiscal_year)
    era = next(e for e in ERAS if last >= e.first_day)
    return (f"{_era_year(era.name, fiscal_year - era.first_day.year + 1)}度（{format_western_date(first)}～"
            f"{format_western_date(last)}）")


def _settlement_cells(s: Settlement) -> list[str]:
    return [_yen(s.certificates), _yen(s.fees_collected), _yen(s.consignment_fee), _yen(s.net_income)]


# -- CSV ---------------------------------------------------------------------------------------------------


def csv_rows(statement: Statement) -> list[list[str | int]]:
    """The statement as CSV rows (header first); numbers as plain integers."""
    info = statement.municipality
    rows: list[list[str | int]] = [list(CSV_COLUMNS), ["明細書", TITLE, "", "", "", "", ""],
                                   ["団体", f"{info.code} {info.prefecture}{info.name}", "", "", "", "", ""]]

    def settlement_row(section: str, item: str, s: Settlement) -> list[str | int]:
        return [section, item, s.certificates, s.fees_collected, s.consignment_fee, s.net_income, ""]

    total = statement.settlement
    if isinstance(statement, MonthlyStatement):
        rows.append(["対象期間", str(statement.month), "", "", "", "", ""])
        rows.append(settlement_row("合計", "当月計", total))
        rows.append(["合計", "BCL利用料（年度末精算・参考）", total.certificates, "", "", "", total.bcl_fee_accrued])
    else:
        charges = statement.charges
        rows.append(["対象期間", f"{statement.fiscal_year}年度", "", "", "", "", ""])
        rows.append(["年度末精算", "BCL利用料", total.certificates, "", "", "", charges.bcl_fee])
        rows.append(["年度末精算", "運営負担金", "", "", "", "", charges.contribution])
        rows.append(["年度末精算", "災害システム利用料", "", "", "", "", charges.disaster_system_fee])
        rows.append(["年度末精算", "年度末精算額合計", "", "", "", "", charges.total])
        rows.append(settlement_row("合計", "年度計", total))
        rows.extend(settlement_row("月別", str(m), s) for m, s in statement.by_month())
    rows.extend(settlement_row("種類別", type_label(t), s) for t, s in statement.by_type().items())
    rows.extend(settlement_row("事業者別", vendor_label(v), s) for v, s in statement.by_vendor().items())
    if isinstance(statement, MonthlyStatement):
        rows.extend(settlement_row(
            "種類別・事業者別", f"{type_label(c.certificate_type)}／{vendor_label(c.kiosk_vendor)}",
                                   settle(c.certificates, c.fees_collected)) for c in statement.counts)
    return rows


def write_csv(statement: Statement, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(csv_rows(statement))
    return path


# -- PDF ---------------------------------------------------------------------------------------------------


class _Document:
    def __init__(self, mincho_font: Path, gothic_font: Path) -> None:
        pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        pdf.set_margins(18, 16, 18)
        pdf.set_auto_page_break(True, margin=16)
        pdf.add_font("mincho", fname=str(mincho_font))
        pdf.add_font("gothic", fname=str(gothic_font))
        pdf.add_page()
        self.pdf = pdf

    def text(self, text: str, size: float = 10, *, gothic: bool = False, align: str = "L", gap: float = 1.5) -> None:
        self.pdf.set_font("gothic" if gothic else "mincho", size=size)
        self.pdf.multi_cell(0, size * 0.5, text, align=align, new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(gap)

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self.text(text, 11, gothic=True, gap=1)

    def table(self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float],
              align: Sequence[str], *, total_rows: int = 0, size: float = 8.5) -> None:
        """A ruled table; the last total_rows rows are shaded (totals)."""
        pdf = self.pdf
        pdf.set_font("mincho", size=size)
        heading_style = FontFace(family="gothic", emphasis="", fill_color=_GREY)
        with pdf.table(col_widths=tuple(widths), width=sum(widths), align="LEFT", text_align=tuple(align),
                       headings_style=heading_style, line_height=size * 0.6, padding=(0.8, 1.2)) as table:
            row = table.row()
            for h in headings:
                row.cell(h, align="CENTER")
            for i, values in enumerate(rows):
                is_total = i >= len(rows) - total_rows
                style = FontFace(family="gothic", emphasis="", fill_color=_GREY) if is_total else None
                row = table.row()
                for value in values:
                    row.cell(value, style=style)
        pdf.ln(2)

    def header(self, statement: Statement, kind: str, period: str) -> None:
        info = statement.municipality
        issued = statement.issued_on
        self.text(f"発行日　{format_japanese_date(issued)}（{format_western_date(issued)}）", 9, align="R", gap=4)
        self.text(TITLE, 16, gothic=True, align="C", gap=1)
        self.text(f"（{kind}）", 10, gothic=True, align="C", gap=6)
        self.text(f"{info.prefecture}　{info.name}　御中", 13, gap=1)
        self.text(f"団体コード　{info.code}", 9, gap=4)
        self.text(f"対象期間　{period}", 10, gap=1)
        self.text(f"発行者　{ISSUER}", 9, gap=3)

    def counts_by_type_and_vendor(self, statement: Statement) -> None:
        self.heading("証明書の種類別")
        by_type = statement.by_type()
        self._settlement_table("証明書の種類", [(type_label(t), s) for t, s in by_type.items()],
                               statement.settlement)
        self.heading("コンビニ事業者等別")
        by_vendor = statement.by_vendor()
        self._settlement_table("事業者", [(vendor_label(v), s) for v, s in by_vendor.items()], statement.settlement)

    def _settlement_table(self, first: str, rows: Sequence[tuple[str, Settlement]], total: Settlement,
                          total_label: str = "計") -> None:
        self.table(
            (first, "交付件数", "交付手数料（円）", "委託手数料（円）", "差引収入（円）"),
            [[label, *_settlement_cells(s)] for label, s in rows] + [[total_label, *_settlement_cells(total)]],
            (52, 24, 32, 32, 34), ("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"), total_rows=1,
        )

    def notes(self, lines: Sequence[str]) -> None:
        self.heading("備考")
        for line in lines:
            self.text(f"・{line}", 8, gap=0.5)

    def output(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pdf.output(str(path))
        return path


_COMMON_NOTES = (
    "交付件数は証明書1通を1件として数えています（証明書IDごとに1件。同じ証明書の交付通知が重複して届いても1件です）。",
    "金額の単位は円で、消費税を含みます。",
    f"委託手数料はコンビニ事業者等への手数料（1件{CONSIGNMENT_FEE_PER_CERTIFICATE}円）で、交付手数料とあわせて毎月精算します。"
    "差引収入は交付手数料から委託手数料を差し引いた額です。",
    f"BCL利用料（1件{BCL_FEE_PER_CERTIFICATE}円）は年度末に一括して精算します。",
)


def _monthly_pdf(statement: MonthlyStatement, doc: _Document) -> None:
    doc.header(statement, "月次明細", month_label(statement))
    total = statement.settlement
    doc.heading("1. 当月の精算額")
    doc.table(
        ("項目", "件数", "金額（円）"),
        [["交付手数料（コンビニ交付分）", _yen(total.certificates), _yen(total.fees_collected)],
         [f"委託手数料（{CONSIGNMENT_FEE_PER_CERTIFICATE}円×件数）", _yen(total.certificates),
          _yen(total.consignment_fee)],
         ["差引収入（交付手数料－委託手数料）", "", _yen(total.net_income)],
         [f"（参考）BCL利用料（{BCL_FEE_PER_CERTIFICATE}円×件数、年度末精算）", _yen(total.certificates),
          _yen(total.bcl_fee_accrued)]],
        (110, 24, 40), ("LEFT", "RIGHT", "RIGHT"), total_rows=0, size=9.5,
    )
    doc.heading("2. 交付件数と手数料の内訳")
    doc.counts_by_type_and_vendor(statement)
    vendors = statement.vendors()
    types = list(statement.by_type())
    if vendors and types:
        doc.heading("3. 種類別・事業者別の交付件数")
        width = min(24.0, (174 - 46 - 18) / len(vendors))
        doc.table(
            ("証明書の種類", *(vendor_label(v) for v in vendors), "計"),
            [[type_label(t), *(_yen(statement.count(t, v)) for v in vendors), _yen(statement.by_type()[t].certificates)]
             for t in types]
            + [["計", *(_yen(statement.by_vendor()[v].certificates) for v in vendors), _yen(total.certificates)]],
            (46, *([width] * len(vendors)), 18), ("LEFT", *(["RIGHT"] * (len(vendors) + 1))), total_rows=1, size=7.5,
        )
    doc.notes(_COMMON_NOTES)


def _fiscal_year_pdf(statement: FiscalYearStatement, doc: _Document) -> None:
    doc.header(statement, "年度明細", fiscal_year_label(statement.fiscal_year))
    info, charges, total = statement.municipality, statement.charges, statement.settlement
    participation = statement.participation
    population = f"{info.population:,}人"

    def months(n: int) -> str:
        return "通年" if n == 12 else ("対象外" if n == 0 else f"{n}か月分（参加月から3月まで）")

    contribution_basis = (f"{CLASS_LABELS[info.municipality_class]}・人口{population}・"
                          f"{MODE_LABELS[participation.mode]}・{months(charges.contribution_months)}")
    disaster_basis = (f"{DISASTER_SYSTEM_BASE_FEE:,}円＋{DISASTER_SYSTEM_FEE_PER_RESIDENT}円×人口{population}・"
                      f"{months(charges.disaster_system_months)}") if participation.disaster_system else "利用なし"
    doc.heading("1. 年度末精算額")
    doc.table(
        ("項目", "算定の基礎", "金額（円）"),
        [["BCL利用料", f"{BCL_FEE_PER_CERTIFICATE}円 × {total.certificates:,}件", _yen(charges.bcl_fee)],
         ["運営負担金", contribution_basis, _yen(charges.contribution)],
         ["災害システム利用料", disaster_basis, _yen(charges.disaster_system_fee)],
         ["年度末精算額合計", "", _yen(charges.total)]],
        (40, 96, 38), ("LEFT", "LEFT", "RIGHT"), total_rows=1, size=9,
    )
    doc.heading("2. 月別の交付件数と手数料（毎月精算分）")
    rows = []
    for month, s in statement.by_month():
        era = to_era(month.first_day)
        rows.append([f"{_era_year(era.era, era.year)}{month.month}月", *_settlement_cells(s)])
    doc.table(("月", "交付件数", "交付手数料（円）", "委託手数料（円）", "差引収入（円）"),
              [*rows, ["年度計", *_settlement_cells(total)]], (52, 24, 32, 32, 34),
              ("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"), total_rows=1)
    doc.heading("3. 交付件数と手数料の内訳（年度計）")
    doc.counts_by_type_and_vendor(statement)
    basis = population_basis_date(statement.fiscal_year)
    figure = f"{info.population_year}年" if info.population_year else "参照データ"
    doc.notes((
        *_COMMON_NOTES,
        f"人口は本来{format_western_date(basis)}現在の住民基本台帳人口によりますが、本明細書では参照データの"
        f"{figure}の人口（{population}）を用いています（概算）。",
        "運営負担金は参加した年度には参加月から3月までの月数で按分し、災害システム利用料は年額の12分の1（円未満切捨て）"
        "に利用開始月から3月までの月数を乗じた額です。",
    ))


def write_pdf(statement: Statement, path: Path, *, mincho_font: Path, gothic_font: Path) -> Path:
    doc = _Document(mincho_font, gothic_font)
    if isinstance(statement, MonthlyStatement):
        _monthly_pdf(statement, doc)
    else:
        _fiscal_year_pdf(statement, doc)
    info = statement.municipality
    doc.pdf.set_title(f"{TITLE} {info.name}")
    doc.pdf.set_author(ISSUER)
    return doc.output(path)
