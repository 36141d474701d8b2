"""`bcl billing statement` and `participation` through the real entry point: the PDF's text (poppler's
pdftotext) has the Japanese headings and totals, the CSV equals the JSON totals."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from sinks.certificate_ledger import CertificateLedger
from streams.cli import cli
from tests.streams.certificate_events import SAPPORO, certificate_events, expected_counts, expected_fees


def bcl(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "billing", *args])
    return result.exit_code, result.output


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def csv_table(path: Path) -> dict[tuple[str, str], list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["区分", "項目", "件数"]
    return {(r[0], r[1]): r[2:] for r in rows[1:]}


def make_log(tmp_path: Path) -> list[dict]:
    events = certificate_events(300)
    CertificateLedger(tmp_path / "snapshots").record(events + events[:40])
    return events


def test_monthly_statement(tmp_path: Path) -> None:
    events = make_log(tmp_path)
    n = sum(v for k, v in expected_counts(events).items() if k[:2] == (SAPPORO, "2025-11"))
    collected = expected_fees(events)[(SAPPORO, "2025-11")]
    code, out = bcl(tmp_path, "statement", "--municipality", SAPPORO, "--month", "2025-11", "--issued-on",
                    "2025-12-05", "--json")
    assert code == 0, out
    totals = json.loads(out)
    assert (totals["certificates"], totals["fees_collected"]) == (n, collected)
    assert (totals["consignment_fee"], totals["net_income"]) == (117 * n, collected - 117 * n)
    assert sum(t["certificates"] for t in totals["by_vendor"].values()) == n

    text = pdf_text(Path(totals["files"]["pdf"]))
    for expected in ("証明書コンビニ交付 利用料金明細書", "札幌市", "御中", "令和7年11月分",
                     "2025年11月1日～2025年11月30日", "令和7年12月5日", "住民票の写し", "ローソン", "委託手数料",
                     "差引収入",
                     f"{collected:,}", f"{117 * n:,}", f"{collected - 117 * n:,}"):
        assert expected in text, expected

    table = csv_table(Path(totals["files"]["csv"]))
    count, fees, consignment, net, _ = table[("合計", "当月計")]
    assert [int(count), int(fees), int(consignment), int(net)] == [
        totals["certificates"], totals["fees_collected"], totals["consignment_fee"], totals["net_income"]]
    assert int(table[("合計", "BCL利用料（年度末精算・参考）")][-1]) == totals["bcl_fee_accrued"] == 180 * n
    assert int(table[("種類別", "住民票の写し")][0]) == totals["by_type"]["RESIDENT_RECORD"]["certificates"]


def test_fiscal_year_statement_with_participation(tmp_path: Path) -> None:
    events = make_log(tmp_path)
    n = sum(v for k, v in expected_counts(events).items() if k[0] == SAPPORO)
    code, out = bcl(tmp_path, "participation", "--municipality", SAPPORO, "--joined", "2025-10")
    assert code == 0, out
    assert json.loads(out)["disaster_system_from"] == "2025-10"
    code, out = bcl(tmp_path, "statement", "--municipality", SAPPORO, "--fiscal-year", "2025", "--out-dir",
                    str(tmp_path / "out"), "--json")
    assert code == 0, out
    totals = json.loads(out)
    # Sapporo: designated city ≥ 1,000,000 (9,879,630 a year), joined in October: 6 of 12 months.
    population = 1_960_668
    disaster = (185_000 + 10 * population) // 12 * 6
    assert (totals["certificates"], totals["bcl_fee"]) == (n, 180 * n)
    assert (totals["contribution"], totals["disaster_system_fee"]) == (9_879_630 * 6 // 12, disaster)
    assert totals["year_end_total"] == 180 * n + 9_879_630 * 6 // 12 + disaster
    assert (totals["population_basis_date"], totals["population_figure_year"]) == ("2025-01-01", 2022)

    text = pdf_text(tmp_path / "out" / f"statement-{SAPPORO}-FY2025.pdf")
    for expected in ("年度明細", "令和7年度", "2025年4月1日～2026年3月31日", "年度末精算額", "運営負担金",
                     "災害システム利用料", "6か月分", f"{totals['year_end_total']:,}", "2022年の人口"):
        assert expected in text, expected
    table = csv_table(tmp_path / "out" / f"statement-{SAPPORO}-FY2025.csv")
    for item, key in (("BCL利用料", "bcl_fee"), ("運営負担金", "contribution"),
                      ("災害システム利用料", "disaster_system_fee"), ("年度末精算額合計", "year_end_total")):
        assert int(table[("年度末精算", item)][-1]) == totals[key]
    assert int(table[("月別", "2025-11")][0]) == totals["by_month"]["2025-11"]["certificates"]


def test_statement_errors_name_the_problem(tmp_path: Path) -> None:
    code, out = bcl(tmp_path, "statement", "--municipality", SAPPORO)
    assert code != 0 and "--month" in out
    code, out = bcl(tmp_path, "statement", "--municipality", SAPPORO, "--month", "2025-13")
    assert code != 0 and "'--month'" in out and "1–12" in out
    code, out = bcl(tmp_path, "statement", "--municipality", SAPPORO, "--month", "11/2025")
    assert code != 0 and "YYYY-MM" in out
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "billing", "statement", "--municipality", "011003",
                                      "--month", "2025-11"])
    assert result.exit_code != 0 and "011003" in str(result.exception)
