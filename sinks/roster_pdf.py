"""The printable 避難行動要支援者名簿 (or an extraction of it), and a person's 個別避難計画, as PDFs: fpdf2 with the
IPAex fonts the platform installs, like the ledger extract (sinks.ledger_extract). The list carries the legal items
of 災害対策基本法 49条の10 2項 for each person (氏名, 生年月日, 性別, 住所, 電話番号, 避難支援等を必要とする事由) and
whether they consented to share in normal times, which decides to whom the paper may be handed before a disaster.
Made in memory; the caller writes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from domain.evacuation_roster import consent_label
from domain.japan_time import to_japan_time
from domain.japanese_date import format_japanese_date
from sinks.evacuation_plans import StoredPlan
from sinks.evacuation_roster import SEX_LABELS, RosterPerson
from sinks.staff_document import draw_table, staff_document

TITLE = "避難行動要支援者名簿"
HEADINGS = ("氏名", "生年月日", "性別", "住所", "電話番号", "避難支援等を必要とする事由", "平常時提供の同意")
WIDTHS = (34, 30, 10, 80, 26, 56, 30)


def _consent(person: RosterPerson) -> str:
    """Whether the person consented to share in normal times, with the date of the decision."""
    return consent_label(person.consent) + (f" {person.consent_on:%Y-%m-%d}" if person.consent_on else "")


def roster_pdf(people: Sequence[RosterPerson], *, municipality_name: str, selection: str, printed_by: str,
               now: dt.datetime, mincho_font: Path, gothic_font: Path) -> bytes:
    """The listed `people` (already selected and audited by the caller); `selection` says which part of the list
    this is (e.g. "全員" or "町名: 女川浜"), printed under the title."""
    pdf = staff_document(f"{TITLE} {municipality_name}", landscape=True, margins=(12, 12), mincho_font=mincho_font,
                         gothic_font=gothic_font)
    pdf.set_font("gothic", size=15)
    pdf.cell(0, 8, f"{TITLE}　{municipality_name}", new_x="LMARGIN", new_y="NEXT")
    local = to_japan_time(now)
    pdf.set_font("mincho", size=9)
    pdf.multi_cell(0, 5, f"抽出: {selection}　{len(people)}名　作成 {format_japanese_date(local.date())} "
                         f"{local:%H:%M}　作成者 {printed_by}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5, "平常時の提供は本人の同意がある者に限る（災害対策基本法49条の11第2項）。"
                         "災害時は同意を要しない。", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    rows = [(person.name, format_japanese_date(person.birth_date), SEX_LABELS[person.sex], person.address,
             person.phone or "", person.reason_text, _consent(person)) for person in people]
    draw_table(pdf, HEADINGS, rows, WIDTHS, gap=0)
    return bytes(pdf.output())


PLAN_TITLE = "個別避難計画"


def plan_pdf(person: RosterPerson, stored: StoredPlan, *, municipality_name: str, printed_by: str, now: dt.datetime,
             mincho_font: Path, gothic_font: Path) -> bytes:
    """One person's 個別避難計画: the list's items of the person, their supporters, the destination shelter, the
    route and the needs, with who last changed it."""
    pdf = staff_document(f"{PLAN_TITLE} {municipality_name}", margins=(16, 14), mincho_font=mincho_font,
                         gothic_font=gothic_font)
    pdf.set_font("gothic", size=15)
    pdf.cell(0, 8, f"{PLAN_TITLE}　{municipality_name}", new_x="LMARGIN", new_y="NEXT")
    local, changed = to_japan_time(now), to_japan_time(stored.updated_at)
    pdf.set_font("mincho", size=9)
    pdf.multi_cell(0, 5, f"作成 {format_japanese_date(local.date())} {local:%H:%M}　作成者 {printed_by}　"
                         f"最終更新 {format_japanese_date(changed.date())} {changed:%H:%M} {stored.updated_by}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    table = partial(draw_table, pdf, size=9, line_height=5.5)

    table(("項目", "内容"), [("氏名", f"{person.name}（{person.name_kana}）"),
                            ("生年月日", format_japanese_date(person.birth_date)), ("性別", SEX_LABELS[person.sex]),
                            ("住所", person.address), ("電話番号", person.phone or ""),
                            ("避難支援等を必要とする事由", person.reason_text), ("平常時提供の同意", _consent(person))],
          (50, 128))
    plan = stored.plan
    table(("避難支援等実施者", "続柄・関係", "電話番号"), [(s.name, s.relation, s.phone) for s in plan.supporters],
          (70, 58, 50))
    kind = {"designated_shelter": "指定避難所", "emergency_site": "指定緊急避難場所"}.get(plan.shelter.kind, "")
    table(("項目", "内容"), [("避難先", f"{plan.shelter.name}（{kind}、{plan.shelter.shelter_id}）"),
                            ("避難先の住所", plan.shelter.address), ("避難経路", plan.route),
                            ("支援に必要な配慮", plan.needs)], (50, 128))
    return bytes(pdf.output())
