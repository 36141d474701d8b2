"""What goes on each page of a certificate: the layout model. Pure: no I/O, no PDF, no images.

A certificate is laid out once into positioned text, lines, boxes and image slots (points, origin at
the top-left of an A4 portrait page, y downwards, text positioned by its baseline); the PDF writer
and the raster renderer (the image the back-side scramble is made from) both draw from this one
model, so they cannot disagree. Text widths come from a TextMeasure (the font's metrics), passed in.

Never printed: the individual number (個人番号) and the resident-record code (住民票コード); this module
does not read those fields at all (docs/domain.md §3, §8).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from certgen.errors import CertificateContentError
from domain.certificate_types import DISASTER_CERTIFICATES, TAX_CERTIFICATES, CertificateType
from domain.disaster_certificate import AffectedCertificate, DamageCertificate, DisasterCause, DisasterCertificate
from domain.japanese_date import format_japanese_date, format_western_date, to_era

PAGE_WIDTH = 595.28  # A4 portrait, points
PAGE_HEIGHT = 841.89
MARGIN = 42.0

# The certificates there is a layout for: every one BCL issues.
LAID_OUT_TYPES = frozenset({CertificateType.RESIDENT_RECORD, CertificateType.SEAL_REGISTRATION, *TAX_CERTIFICATES,
                            *DISASTER_CERTIFICATES})

Color = tuple[float, float, float]
BLACK: Color = (0.0, 0.0, 0.0)
SEAL_RED: Color = (0.80, 0.08, 0.10)
GREY: Color = (0.35, 0.35, 0.35)

Resident = Mapping[str, Any]  # a fastavro-decoded jp.bcl.register.Resident (schemas/avro/resident.avsc)


class TextMeasure(Protocol):
    def width(self, text: str, size: float) -> float:
        """Advance width of text at a font size, in points."""
        ...


@dataclass(frozen=True)
class Issuer:
    """The issuing municipality as printed: 横浜市長　山田　太郎 and its official seal."""

    municipality_code: str
    municipality_name: str  # 横浜市
    mayor_title: str  # 横浜市長
    mayor_name: str  # 山田　太郎


@dataclass(frozen=True)
class ResidentCopyOptions:
    """住民票の写し: which members (resident codes; None = the whole household) and optional items."""

    member_codes: frozenset[str] | None = None
    household_head_and_relationship: bool = False  # 世帯主・続柄
    domicile: bool = False  # 本籍・筆頭者


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    size: float
    text: str
    color: Color = BLACK


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.6
    color: Color = BLACK


@dataclass(frozen=True)
class Box:
    x: float
    y: float  # top
    w: float
    h: float
    width: float = 0.8
    color: Color = BLACK


@dataclass(frozen=True)
class ImageSlot:
    """Where a document image goes; name is a key of DocumentLayout.images."""

    x: float
    y: float  # top
    w: float
    h: float
    name: str


Item = Text | Line | Box | ImageSlot


@dataclass(frozen=True)
class Page:
    items: tuple[Item, ...]

    def text(self) -> str:
        """The page's text in drawing order (for tests and search)."""
        return "\n".join(item.text for item in self.items if isinstance(item, Text))


@dataclass(frozen=True)
class DocumentLayout:
    kind: CertificateType
    title: str
    pages: tuple[Page, ...]
    images: Mapping[str, bytes] = field(default_factory=dict)  # name -> PNG bytes (the seal impression)
    width: float = PAGE_WIDTH
    height: float = PAGE_HEIGHT

    def characters(self) -> set[str]:
        return {ch for page in self.pages for item in page.items if isinstance(item, Text) for ch in item.text}


# ------------------------------------------------------------------------------------------------
# Shared page furniture


class _PageBuilder:
    def __init__(self, measure: TextMeasure) -> None:
        self.measure = measure
        self.items: list[Item] = []

    def text(self, x: float, y: float, size: float, text: str, color: Color = BLACK) -> None:
        if text:
            self.items.append(Text(x, y, size, text, color))

    def text_right(self, right: float, y: float, size: float, text: str, color: Color = BLACK) -> None:
        self.text(right - self.measure.width(text, size), y, size, text, color)

    def text_center(self, center: float, y: float, size: float, text: str, color: Color = BLACK) -> None:
        self.text(center - self.measure.width(text, size) / 2, y, size, text, color)

    def text_fit(self, x: float, y: float, size: float, text: str, max_width: float, min_size: float = 5.5) -> None:
        """Shrinks the size until text fits (long addresses) rather than overflowing the cell."""
        width = self.measure.width(text, size)
        if width > max_width:
            size = max(min_size, size * max_width / width)
        self.text(x, y, size, text)

    def box(self, x: float, y: float, w: float, h: float, width: float = 0.8) -> None:
        self.items.append(Box(x, y, w, h, width))

    def hline(self, x1: float, x2: float, y: float, width: float = 0.4) -> None:
        self.items.append(Line(x1, y, x2, y, width))

    def vline(self, x: float, y1: float, y2: float, width: float = 0.4) -> None:
        self.items.append(Line(x, y1, x, y2, width))

    def page(self) -> Page:
        return Page(tuple(self.items))


def _spaced(title: str) -> str:
    """Titles are printed letter-spaced with ideographic spaces: 住　民　票　の　写　し."""
    return "\u3000".join(title)


def _page_number(number: int, total: int) -> str:
    return f"{total}枚中{number}枚目"


def _header(b: _PageBuilder, title: str, number: int, total: int) -> None:
    b.text_right(PAGE_WIDTH - MARGIN, 36, 9, _page_number(number, total))
    b.text_center(PAGE_WIDTH / 2, 72, 20, _spaced(title))


def _official_seal(b: _PageBuilder, issuer: Issuer, x: float, y: float, size: float) -> None:
    """The mayor's official seal (公印): a red square with 「…長之印」 in vertical columns, right to left."""
    chars = f"{issuer.mayor_title}之印"
    rows = math.ceil(math.sqrt(len(chars)))
    cols = math.ceil(len(chars) / rows)
    b.items.append(Box(x, y, size, size, 2.2, SEAL_RED))
    inner = size - 8
    cell = inner / max(rows, cols)
    glyph = cell * 0.92
    x0 = x + 4 + (inner - cols * cell) / 2
    y0 = y + 4 + (inner - rows * cell) / 2
    for i, ch in enumerate(chars):
        col, row = divmod(i, rows)
        cx = x0 + (cols - 1 - col) * cell
        b.text(cx + (cell - glyph) / 2, y0 + row * cell + cell * 0.84, glyph, ch, SEAL_RED)


def _certification(b: _PageBuilder, sentence: str, issuer: Issuer, issued_on: dt.date, top: float) -> None:
    """The certification sentence, issue date in the era, the mayor's title and name, and the seal."""
    b.text(MARGIN + 22, top, 11.5, sentence)
    b.text(MARGIN + 22, top + 28, 11, format_japanese_date(issued_on))
    signature = f"{issuer.mayor_title}\u3000{issuer.mayor_name}"
    right = PAGE_WIDTH - MARGIN - 70
    b.text_right(right, top + 64, 14, signature)
    _official_seal(b, issuer, right + 8, top + 30, 56)


def _sex(resident: Resident) -> str:
    return {"MALE": "男", "FEMALE": "女"}.get(str(resident["sex"]), "")


def _name(resident: Resident) -> str:
    return f"{resident['family_name']}\u3000{resident['given_name']}"


def _kana(resident: Resident) -> str:
    return f"{resident['family_name_kana']}\u3000{resident['given_name_kana']}"


def _is_foreign(resident: Resident) -> bool:
    # Foreign residents have no registered domicile; their certificates show dates in the Western calendar.
    return not resident.get("registered_domicile")


def _birth(resident: Resident) -> str:
    birth: dt.date = resident["birth_date"]
    return format_western_date(birth) if _is_foreign(resident) else format_japanese_date(birth)


def _date(value: dt.date | None) -> str:
    return format_japanese_date(value) if value is not None else ""


def _address(resident: Resident) -> str:
    a = resident["address"]
    parts = [a["prefecture"], a["municipality"], a["town"], a["block"]]
    text = "".join(p for p in parts if p)
    if a.get("building"):
        text += "\u3000" + a["building"]
    return text


def _require_current(resident: Resident) -> None:
    if resident.get("status") != "CURRENT":
        raise CertificateContentError(
            "a deleted (消除) resident record cannot be issued at a kiosk; remove it from the request"
        )


# ------------------------------------------------------------------------------------------------
# 住民票の写し

_LABEL_W = 78.0
_MEMBERS_TOP = 150.0
_MEMBERS_BOTTOM = 660.0  # the certification sentence and the mayor's seal sit below
_BLOCK_GAP = 8.0


def _member_rows(options: ResidentCopyOptions) -> list[float]:
    return [30, 20, 20, 20, 22] + ([22] if options.domicile else [])


def members_per_page(options: ResidentCopyOptions) -> int:
    """4 member blocks fit a page, 3 when 本籍・筆頭者 adds a row to each."""
    return int((_MEMBERS_BOTTOM - _MEMBERS_TOP) // (sum(_member_rows(options)) + _BLOCK_GAP))


def _move_reason(resident: Resident) -> str:
    """前住所 / 事由: 「東京都千代田区…から転入」, 「…から転居」 within the municipality, or 出生."""
    previous = resident.get("previous_address")
    if not previous:
        birth_here = resident["became_resident_on"] == resident["birth_date"]
        return f"{_date(resident['became_resident_on'])}\u3000{'出生' if birth_here else '職権記載'}"
    here = resident["address"]["prefecture"] + resident["address"]["municipality"]
    verb = "転居" if previous.startswith(here) else "転入"
    return f"{_date(resident['became_resident_on'])}\u3000{previous}から{verb}"


def _member_block(b: _PageBuilder, r: Resident, top: float, options: ResidentCopyOptions) -> float:
    """One member's box; returns its height."""
    left, right = MARGIN, PAGE_WIDTH - MARGIN
    mid = (left + right) / 2
    rows = _member_rows(options)
    height = sum(rows)
    b.box(left, top, right - left, height)
    y = top
    edges = []
    for h in rows[:-1]:
        y += h
        edges.append(y)
        b.hline(left, right, y)
    b.vline(left + _LABEL_W, top, top + height)
    sex_x = right - 100
    b.vline(sex_x, top, edges[0])
    b.vline(sex_x + 40, top, edges[0])
    for row_top, row_bottom in ((edges[0], edges[1]), (edges[1], edges[2]), (edges[2], edges[3])):
        b.vline(mid, row_top, row_bottom)
        b.vline(mid + _LABEL_W, row_top, row_bottom)
    if options.domicile:
        b.vline(mid, edges[4], top + height)
        b.vline(mid + _LABEL_W, edges[4], top + height)

    def label(x: float, row_top: float, row_h: float, text: str) -> None:
        b.text_center(x + _LABEL_W / 2, row_top + row_h / 2 + 3.5, 9.5, text)

    def value(x: float, row_top: float, row_h: float, text: str, max_w: float, size: float = 10.5) -> None:
        b.text_fit(x + 6, row_top + row_h / 2 + 3.8, size, text, max_w - 12)

    label(left, top, 30, "氏名")
    b.text(left + _LABEL_W + 6, top + 10, 7, _kana(r), GREY)
    b.text_fit(left + _LABEL_W + 6, top + 25, 14, _name(r), sex_x - left - _LABEL_W - 12)
    b.text_center(sex_x + 20, top + 19, 9.5, "性別")
    b.text_center(sex_x + 70, top + 19.5, 11, _sex(r))

    half = mid - left - _LABEL_W
    label(left, edges[0], 20, "生年月日")
    value(left + _LABEL_W, edges[0], 20, _birth(r), half)
    label(mid, edges[0], 20, "続柄")
    value(mid + _LABEL_W, edges[0], 20, r["relationship"] if options.household_head_and_relationship else "", half)
    label(left, edges[1], 20, "住民となった日")
    value(left + _LABEL_W, edges[1], 20, _date(r["became_resident_on"]), half)
    label(mid, edges[1], 20, "住所を定めた日")
    value(mid + _LABEL_W, edges[1], 20, _date(r["address_set_on"]), half)
    label(left, edges[2], 20, "届出の年月日")
    value(left + _LABEL_W, edges[2], 20, _date(r["notified_on"]), half)
    label(mid, edges[2], 20, "住民票コード")
    value(mid + _LABEL_W, edges[2], 20, "記載省略", half)  # the code itself is never printed at a kiosk
    label(left, edges[3], 22, "前住所・事由")
    value(left + _LABEL_W, edges[3], 22, _move_reason(r), right - left - _LABEL_W, 10)
    if options.domicile:
        label(left, edges[4], 22, "本籍")
        value(left + _LABEL_W, edges[4], 22, r.get("registered_domicile") or "", half, 10)
        label(mid, edges[4], 22, "筆頭者")
        value(mid + _LABEL_W, edges[4], 22, r.get("domicile_head") or "", half, 10)
    return height


def layout_resident_copy(
    household: Sequence[Resident],
    options: ResidentCopyOptions,
    issuer: Issuer,
    issued_on: dt.date,
    measure: TextMeasure,
) -> DocumentLayout:
    """住民票の写し of a household (all current members, or options.member_codes), head first."""
    if not household:
        raise CertificateContentError("a resident-record copy needs at least one household member")
    if len({r["household_number"] for r in household}) != 1:
        raise CertificateContentError("the residents given belong to more than one household")
    for r in household:
        _require_current(r)
    chosen = [r for r in household if options.member_codes is None or r["resident_code"] in options.member_codes]
    if not chosen:
        raise CertificateContentError("none of the chosen members belongs to this household")
    whole = len(chosen) == len(household)
    # The head first, then the others in register order: the familiar reading order of a 住民票.
    chosen.sort(key=lambda r: r["relationship"] != "世帯主")
    per_page = members_per_page(options)
    pages_of_members = [chosen[i : i + per_page] for i in range(0, len(chosen), per_page)]
    total = len(pages_of_members)
    scope = "世帯全員" if whole else "世帯の一部"
    sentence = f"この写しは、{scope}の住民票の原本と相違ないことを証明する。"
    title = "住民票の写し"
    pages = []
    for number, members in enumerate(pages_of_members, start=1):
        b = _PageBuilder(measure)
        _header(b, title, number, total)
        left, right = MARGIN, PAGE_WIDTH - MARGIN
        b.box(left, 92, right - left, 44 if options.household_head_and_relationship else 22)
        b.vline(left + _LABEL_W, 92, 136 if options.household_head_and_relationship else 114)
        b.text_center(left + _LABEL_W / 2, 106.5, 9.5, "住所")
        b.text_fit(left + _LABEL_W + 6, 107, 11, _address(chosen[0]), right - left - _LABEL_W - 12)
        if options.household_head_and_relationship:
            b.hline(left, right, 114)
            b.text_center(left + _LABEL_W / 2, 128.5, 9.5, "世帯主")
            b.text(left + _LABEL_W + 6, 129, 11, chosen[0]["household_head_name"])
        top = _MEMBERS_TOP
        for member in members:
            top += _member_block(b, member, top, options) + _BLOCK_GAP
        b.text(MARGIN, 668, 9, "以下余白" if number == total else "次葉へ続く")
        if number == total:
            _certification(b, sentence, issuer, issued_on, 700)
        else:
            b.text_right(PAGE_WIDTH - MARGIN, 700, 9, f"{issuer.mayor_title}\u3000{issuer.mayor_name}")
        pages.append(b.page())
    return DocumentLayout(CertificateType.RESIDENT_RECORD, title, tuple(pages))


# ------------------------------------------------------------------------------------------------
# 印鑑登録証明書

SEAL_IMAGE = "seal_impression"


def layout_seal_registration(
    resident: Resident, issuer: Issuer, issued_on: dt.date, measure: TextMeasure
) -> DocumentLayout:
    """印鑑登録証明書: the registered seal impression with the registrant's particulars."""
    _require_current(resident)
    seal = resident.get("seal")
    if not seal or seal.get("status") != "REGISTERED":
        raise CertificateContentError("the resident has no valid seal registration (印鑑登録)")
    title = "印鑑登録証明書"
    b = _PageBuilder(measure)
    _header(b, title, 1, 1)
    left, right = MARGIN, PAGE_WIDTH - MARGIN
    top, frame = 110.0, 150.0
    b.box(left, top, frame, frame)
    b.text_center(left + frame / 2, top + 14, 9, "印影")
    b.items.append(ImageSlot(left + 20, top + 22, frame - 40, frame - 40, SEAL_IMAGE))
    x = left + frame + 12
    rows = [
        ("登録番号", seal["registration_number"]),
        ("氏名", _name(resident)),
        ("氏名の振り仮名", _kana(resident)),
        ("生年月日", _birth(resident)),
        ("性別", _sex(resident)),
        ("住所", _address(resident)),
        ("登録年月日", _date(seal["registered_on"])),
    ]
    row_h = frame / len(rows)
    b.box(x, top, right - x, frame)
    b.vline(x + _LABEL_W, top, top + frame)
    for i, (name, val) in enumerate(rows):
        y = top + i * row_h
        if i:
            b.hline(x, right, y)
        b.text_center(x + _LABEL_W / 2, y + row_h / 2 + 3.5, 9, name)
        b.text_fit(x + _LABEL_W + 6, y + row_h / 2 + 4, 12 if name == "氏名" else 10, val, right - x - _LABEL_W - 12)
    b.text(MARGIN, top + frame + 24, 9, "以下余白")
    _certification(b, "この写しは、登録されている印影と相違ないことを証明する。", issuer, issued_on, 420)
    image = seal["impression_png"]
    return DocumentLayout(CertificateType.SEAL_REGISTRATION, title, (b.page(),), {SEAL_IMAGE: bytes(image)})


# ------------------------------------------------------------------------------------------------
# 所得・課税(非課税)・納税証明書

_PAYMENT = {"PAID": "完納", "PARTIAL": "一部納付", "UNPAID": "未納", "NOT_DUE": "納期未到来"}


def fiscal_year_label(fiscal_year: int) -> str:
    """令和8年度. A fiscal year is named by the era in force after its first month (FY2019 = 令和元年度)."""
    era = to_era(dt.date(fiscal_year, 5, 1))
    return f"{era.era}{'元' if era.year == 1 else era.year}年度"


def income_year_label(fiscal_year: int) -> str:
    """令和7年分: the calendar year of income a fiscal year's assessment is based on."""
    era = to_era(dt.date(fiscal_year - 1, 12, 31))
    return f"{era.era}{'元' if era.year == 1 else era.year}年分"


def _yen(amount: int) -> str:
    return f"{amount:,}円"


def select_tax_record(resident: Resident, fiscal_year: int | None) -> Mapping[str, Any]:
    """The requested fiscal year's record, or the latest assessed one."""
    records = sorted(resident.get("tax_records") or [], key=lambda t: t["fiscal_year"])
    if not records:
        raise CertificateContentError("the resident has no tax records")
    if fiscal_year is None:
        return records[-1]
    for record in records:
        if record["fiscal_year"] == fiscal_year:
            return record
    available = ", ".join(str(t["fiscal_year"]) for t in records)
    raise CertificateContentError(f"no tax record for fiscal year {fiscal_year} (available: {available})")


def layout_tax_certificate(
    kind: CertificateType,
    resident: Resident,
    fiscal_year: int | None,
    issuer: Issuer,
    issued_on: dt.date,
    measure: TextMeasure,
) -> DocumentLayout:
    """所得証明書, 課税証明書 (非課税証明書 when exempt) or 納税証明書 for one fiscal year."""
    _require_current(resident)
    record = select_tax_record(resident, fiscal_year)
    fy = int(record["fiscal_year"])
    tax, paid = int(record["tax_yen"]), int(record["paid_yen"])
    if kind is CertificateType.INCOME:
        title = "所得証明書"
        rows = [("所得の年", income_year_label(fy)), ("所得金額", _yen(int(record["income_yen"])))]
    elif kind is CertificateType.TAXATION:
        title = "非課税証明書" if record["tax_exempt"] else "課税証明書"
        rows = [
            ("所得の年", income_year_label(fy)),
            ("所得金額", _yen(int(record["income_yen"]))),
            ("課税標準額", _yen(int(record["taxable_income_yen"]))),
            ("市県民税額", "非課税" if record["tax_exempt"] else _yen(tax)),
        ]
    elif kind is CertificateType.TAX_PAYMENT:
        title = "納税証明書"
        rows = [
            ("税目", "市県民税（個人）"),
            ("税額", _yen(tax)),
            ("納付済額", _yen(paid)),
            ("未納額", _yen(max(tax - paid, 0))),
            ("納税状況", _PAYMENT.get(str(record["payment_status"]), str(record["payment_status"]))),
        ]
    else:
        raise CertificateContentError(f"{kind} is not a tax certificate")
    b = _PageBuilder(measure)
    _header(b, title, 1, 1)
    b.text_center(PAGE_WIDTH / 2, 96, 12, f"（{fiscal_year_label(fy)}）")
    left, right = MARGIN, PAGE_WIDTH - MARGIN
    person = [("住所", _address(resident)), ("氏名", _name(resident)), ("生年月日", _birth(resident))]
    all_rows = person + rows
    top, row_h = 120.0, 26.0
    b.box(left, top, right - left, row_h * len(all_rows))
    b.vline(left + _LABEL_W + 20, top, top + row_h * len(all_rows))
    for i, (name, val) in enumerate(all_rows):
        y = top + i * row_h
        if i:
            b.hline(left, right, y, 0.8 if i == len(person) else 0.4)
        b.text_center(left + (_LABEL_W + 20) / 2, y + row_h / 2 + 3.5, 10, name)
        size = 12 if name == "氏名" else 11
        b.text_fit(left + _LABEL_W + 28, y + row_h / 2 + 4, size, val, right - left - _LABEL_W - 36)
    b.text(MARGIN, top + row_h * len(all_rows) + 22, 9, "以下余白")
    _certification(b, "上記のとおり相違ないことを証明する。", issuer, issued_on, 520)
    return DocumentLayout(kind, title, (b.page(),))


# ------------------------------------------------------------------------------------------------
# 罹災証明書・被災証明書

_NO_ENTRY = "―"  # an item with nothing to state (no flood depth, no remarks)


def _cause(cause: DisasterCause) -> str:
    return f"{format_japanese_date(cause.occurred_on)}発生\u3000{cause.name}（{cause.kind_label}）"


def _table(b: _PageBuilder, rows: Sequence[tuple[str, str]], top: float, row_h: float = 30.0) -> float:
    """Label | value rows in one frame; returns the frame's bottom."""
    left, right = MARGIN, PAGE_WIDTH - MARGIN
    label_w = _LABEL_W + 40
    b.box(left, top, right - left, row_h * len(rows))
    b.vline(left + label_w, top, top + row_h * len(rows))
    for i, (name, val) in enumerate(rows):
        y = top + i * row_h
        if i:
            b.hline(left, right, y)
        b.text_center(left + label_w / 2, y + row_h / 2 + 3.5, 10, name)
        b.text_fit(left + label_w + 8, y + row_h / 2 + 4, 12 if name == "被害の程度" else 11, val,
                   right - left - label_w - 16)
    return top + row_h * len(rows)


def layout_disaster_certificate(kind: CertificateType, resident: Resident, certificate: DisasterCertificate,
                                issuer: Issuer, issued_on: dt.date, measure: TextMeasure) -> DocumentLayout:
    """罹災証明書 (the damage level of the household's dwelling) or 被災証明書 (that damage was reported), for the
    requester `resident`, stating `certificate` as the decision fixed it (docs/domain.md §6.3)."""
    _require_current(resident)
    if kind is CertificateType.DISASTER_DAMAGE and isinstance(certificate, DamageCertificate):
        title = "罹災証明書"
        rows = [("世帯主氏名", certificate.household_head_name), ("世帯の住所", certificate.household_address),
                ("被災住家の所在地", certificate.dwelling_address), ("罹災原因", _cause(certificate.cause)),
                ("被害の程度", certificate.level_label),
                ("浸水の程度", certificate.flood_depth.japanese if certificate.flood_depth else _NO_ENTRY),
                ("備考", certificate.remarks or _NO_ENTRY)]
        sentence = "上記のとおり、住家に被害を受けたことを証明する。"
    elif kind is CertificateType.DISASTER_AFFECTED and isinstance(certificate, AffectedCertificate):
        title = "被災証明書"
        if not certificate.reported:
            raise CertificateContentError("a 被災証明書 certifies what was reported: nothing was")
        rows = [("届出者氏名", _name(resident)), ("届出者の住所", _address(resident)),
                ("災害", _cause(certificate.cause)), ("届出の内容", "、".join(certificate.reported))]
        sentence = "上記のとおり、被害の届出があったことを証明する。"
    else:
        raise CertificateContentError(f"{kind} needs the facts of its own kind, got {type(certificate).__name__}")
    b = _PageBuilder(measure)
    _header(b, title, 1, 1)
    b.text_right(PAGE_WIDTH - MARGIN, 104, 10.5, f"第{certificate.number}号")
    bottom = _table(b, rows, 124)
    b.text(MARGIN, bottom + 22, 9, "以下余白")
    _certification(b, sentence, issuer, issued_on, 440)
    return DocumentLayout(kind, title, (b.page(),))


def layout_certificate(
    kind: CertificateType,
    residents: Sequence[Resident],
    issuer: Issuer,
    issued_on: dt.date,
    measure: TextMeasure,
    *,
    options: ResidentCopyOptions | None = None,
    fiscal_year: int | None = None,
    disaster: DisasterCertificate | None = None,
) -> DocumentLayout:
    """Lays out any certificate kind. residents: the household for a resident-record copy, else one person;
    disaster: what a 罹災証明書 or 被災証明書 states."""
    if kind not in LAID_OUT_TYPES:
        raise CertificateContentError(f"there is no certificate layout for {kind}")
    if kind is CertificateType.RESIDENT_RECORD:
        return layout_resident_copy(residents, options or ResidentCopyOptions(), issuer, issued_on, measure)
    if len(residents) != 1:
        raise CertificateContentError(f"a {kind} certificate is for exactly one resident, got {len(residents)}")
    if kind is CertificateType.SEAL_REGISTRATION:
        return layout_seal_registration(residents[0], issuer, issued_on, measure)
    if kind in DISASTER_CERTIFICATES:
        if disaster is None:
            raise CertificateContentError(f"a {kind} certificate needs the disaster facts it states")
        return layout_disaster_certificate(kind, residents[0], disaster, issuer, issued_on, measure)
    return layout_tax_certificate(kind, residents[0], fiscal_year, issuer, issued_on, measure)
