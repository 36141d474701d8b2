"""The printed documents of disaster support that staff hand over (the ledger extract, sinks.ledger_extract; the
避難行動要支援者名簿 and the 個別避難計画, sinks.roster_pdf): an A4 page with the IPAex fonts the platform installs
(mincho for text, gothic for titles and headings) and tables with grey headings, made with fpdf2 in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace

_GREY = (225, 228, 232)


def staff_document(title: str, *, landscape: bool = False, margins: tuple[float, float], mincho_font: Path,
                   gothic_font: Path) -> FPDF:
    """A new document titled `title` with its first page; `margins` are (sides, top and bottom) in mm."""
    pdf = FPDF(orientation="landscape" if landscape else "portrait", unit="mm", format="A4")
    side, top = margins
    pdf.set_margins(side, top, side)
    pdf.set_auto_page_break(True, margin=top)
    pdf.add_font("mincho", fname=str(mincho_font))
    pdf.add_font("gothic", fname=str(gothic_font))
    pdf.set_title(title)
    pdf.add_page()
    return pdf


def draw_table(pdf: FPDF, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], *,
               size: float = 8.5, line_height: float = 5, gap: float = 3) -> None:
    """A table of `rows` under grey `headings`, then `gap` mm of space."""
    pdf.set_font("mincho", size=size)
    with pdf.table(col_widths=tuple(widths), width=sum(widths), align="LEFT", line_height=line_height,
                   headings_style=FontFace(family="gothic", emphasis="", fill_color=_GREY),
                   padding=(0.8, 1.2)) as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)
    if gap:
        pdf.ln(gap)
