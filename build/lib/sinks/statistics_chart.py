"""PNG chart of the monthly trend. Uses matplotlib's object API with the Agg canvas directly (no pyplot,
no global back-end state, no display needed)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from domain.statistics import CATEGORIES, OTHER, RESIDENT_RECORD, SEAL, TAX
from sinks.statistics import StatTable

# Latin labels, so that the chart renders without a Japanese font.
_LABELS = {RESIDENT_RECORD: "resident record", SEAL: "seal registration", TAX: "tax", OTHER: "disaster"}


def monthly_trend_chart(table: StatTable, path: Path) -> None:
    """Stacked bars of certificates per month by category, with the municipalities issuing as a line."""
    months = table.column("month")
    figure = Figure(figsize=(11, 5.5), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    bottom = [0] * len(months)
    for category in CATEGORIES:
        values = table.column(category)
        if not any(values):
            continue  # 住記載, 戸籍 and 附票 are never issued through BCL
        axis.bar(months, values, bottom=bottom, label=_LABELS.get(category, "other"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel("certificates issued")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axis.tick_params(axis="x", rotation=45)
    issuing = axis.twinx()
    issuing.plot(months, table.column("参加団体"), color="black", marker="o", label="municipalities issuing")
    issuing.set_ylabel("municipalities issuing")
    issuing.set_ylim(bottom=0)
    handles, labels = axis.get_legend_handles_labels()
    more_handles, more_labels = issuing.get_legend_handles_labels()
    axis.legend(handles + more_handles, labels + more_labels, loc="lower left", fontsize="small")
    axis.set_title("Certificates issued per month (BCL kiosk issuance)")
    figure.tight_layout()
    figure.savefig(path, format="png")
