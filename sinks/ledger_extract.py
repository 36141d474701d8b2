"""The printable extract of one household of a 被災者台帳 (被災者台帳 記載事項の抜粋), as a PDF (fpdf2 with the IPAex
fonts the platform installs, like the billing statements): the household's members as the ledger holds them, the
dwelling and its damage level with every change, what staff entered, and the support money applied for, paid and
outstanding with each payment. The individual number is never printed (an extract is handed over on paper).
Made in memory for the staff page that serves it; nothing is written."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

from domain.damage_levels import DamageLevel
from domain.disaster_applications import PROCEDURE_NAMES
from domain.japan_time import to_japan_time
from domain.japanese_date import format_japanese_date
from domain.ledger_staff_items import STAFF_ITEMS
from domain.support_payments import yen
from sinks.staff_document import draw_table, staff_document
from sinks.staff_scope import Household

TITLE = "被災者台帳　記載事項の抜粋"
_SEX = {"MALE": "男", "FEMALE": "女", "NOT_APPLICABLE": "—"}


def _level(level: DamageLevel | None) -> str:
    return "未認定" if level is None else level.japanese


def _when(instant: dt.datetime) -> str:
    local = to_japan_time(instant)
    return f"{format_japanese_date(local.date())} {local:%H:%M}"


def extract_pdf(household: Household, *, printed_by: str, now: dt.datetime, mincho_font: Path,
                gothic_font: Path) -> bytes:
    pdf = staff_document(f"{TITLE} {household.household_number}", margins=(16, 14), mincho_font=mincho_font,
                         gothic_font=gothic_font)

    table = partial(draw_table, pdf)

    def text(value: str, size: float = 10, *, gothic: bool = False, align: str = "L", gap: float = 1.5) -> None:
        pdf.set_font("gothic" if gothic else "mincho", size=size)
        pdf.multi_cell(0, size * 0.5, value, align=align, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    disaster = household.disaster
    text(f"出力　{_when(now)}　{printed_by}", 8.5, align="R", gap=3)
    text(TITLE, 15, gothic=True, align="C", gap=5)
    text(f"災害　{disaster.name}（発災 {_when(disaster.occurred_at)}）", 10)
    text(f"世帯番号　{household.household_number}", 10)
    level = household.assessment.level if household.assessment else None
    address = household.dwelling.address if household.dwelling else household.members[0].row["current_address"]
    text(f"住家　{address}", 10)
    text(f"被害の程度　{_level(level)}", 10, gothic=True, gap=4)

    text("世帯員", 11, gothic=True, gap=1)
    table(["氏名", "フリガナ", "生年月日", "性別", "続柄", "状態", "フラグ"],
          [[f"{p.row['family_name']} {p.row['given_name']}", f"{p.row['family_name_kana']} {p.row['given_name_kana']}",
            format_japanese_date(dt.date.fromisoformat(p.row["birth_date"])), _SEX.get(p.row["sex"], p.row["sex"]),
            p.row["relationship"], p.row["current_status"], p.row["flags"].replace(",", " ") or "—"]
           for p in household.members], [32, 34, 30, 10, 18, 20, 34])

    text("職員が記載した事項", 11, gothic=True, gap=1)
    entered = [[f"{p.row['family_name']} {p.row['given_name']}", item.japanese, p.items[item.name]]
               for p in household.members for item in STAFF_ITEMS if item.name in p.items]
    table(["氏名", "事項", "内容"], entered or [["—", "—", "記載なし"]], [36, 40, 102])

    text("被害認定の経過", 11, gothic=True, gap=1)
    changes = [[_when(c.recorded_at), _level(c.old_level), _level(c.new_level), c.source.value, c.changed_by,
                c.reason or ""] for c in household.history]
    table(["記録日時", "変更前", "変更後", "区分", "担当", "理由"], changes or [["—", "—", "—", "—", "—", "認定なし"]],
          [36, 22, 22, 16, 28, 54])
    text("支援金等（申請額・支払済・未払）", 11, gothic=True, gap=1)
    procedures = household.support.procedures if household.support else []
    support = [[PROCEDURE_NAMES[p.procedure], yen(p.applied), "　".join(a.basis for a in p.amounts), yen(p.paid),
                yen(p.outstanding)] for p in procedures]
    table(["手続", "申請額", "算定", "支払済", "未払"], support or [["—", "—", "記録なし", "—", "—"]],
          [40, 24, 66, 24, 24])
    payments = [[PROCEDURE_NAMES[p.procedure], format_japanese_date(x.paid_on), yen(x.amount), x.paid_by, x.reference]
                for p in procedures for x in p.payments]
    if payments:
        table(["手続", "支払日", "金額", "担当", "参照番号"], payments, [40, 34, 26, 30, 48])
    text("この抜粋には個人情報が含まれます。取扱いに注意してください。", 8.5, gap=0)
    return bytes(pdf.output())
