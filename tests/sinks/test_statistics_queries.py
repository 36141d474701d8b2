"""Each statistics query on the hand-made log, checked against exact numbers worked out by hand and against
an independent computation in Python with the domain rules."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from domain.office_hours import is_outside_office_hours
from domain.reference_data import MUNICIPALITIES_FILE, read_rows
from sinks import statistics
from sinks.certificate_log import append_certificates
from tests.sinks.issued_log_factory import CHIYODA, HAKODATE, SAPPORO, events


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    store = tmp_path_factory.mktemp("snapshots")
    append_certificates(store, events()[:6])
    append_certificates(store, events()[6:])  # two batches: several parts per month
    connection = statistics.open_statistics(store)
    yield connection
    connection.close()


def _populations() -> dict[str, int]:
    return {r["code"]: int(r["population"]) for r in read_rows(MUNICIPALITIES_FILE, {"code", "kind", "population"})
            if r["kind"] != "ward_of_designated_city" and r["population"] and int(r["population"]) > 0}


def test_monthly(con: duckdb.DuckDBPyConnection) -> None:
    table = statistics.monthly(con)
    assert table.columns == ("month", "住民票", "住記載", "印鑑", "税", "戸籍", "附票", "その他", "計", "参加団体")
    assert table.rows == [
        ("2025-03", 1, 0, 0, 0, 0, 0, 0, 1, 1),
        ("2025-04", 0, 0, 0, 0, 0, 0, 1, 1, 1),
        ("2025-11", 2, 0, 1, 2, 0, 0, 0, 5, 2),
        ("2025-12", 1, 0, 0, 0, 0, 0, 0, 1, 1),
        ("2026-01", 2, 0, 0, 1, 0, 0, 0, 3, 2),
    ]
    assert statistics.monthly(con, municipality=HAKODATE).rows == [("2026-01", 1, 0, 0, 1, 0, 0, 0, 2, 1)]


def test_fiscal_year(con: duckdb.DuckDBPyConnection) -> None:
    assert statistics.fiscal_year(con).rows == [
        (2024, 1, 0, 0, 0, 0, 0, 0, 1, 1),
        (2025, 5, 0, 1, 3, 0, 0, 1, 10, 3),
    ]


def test_off_hours(con: duckdb.DuckDBPyConnection) -> None:
    table = statistics.off_hours(con, top=2)
    assert [row[:4] for row in table.rows] == [
        ("", "全国", 11, 8),
        (SAPPORO, "札幌市", 5, 3),
        (CHIYODA, "千代田区", 4, 4),
    ]
    assert table.rows[0][4] == pytest.approx(8 / 11)
    independent = sum(is_outside_office_hours(e["issued_at"]) for e in events())
    assert table.rows[0][3] == independent


def test_other_municipality(con: duckdb.DuckDBPyConnection) -> None:
    table = statistics.other_municipality(con, top=3)
    assert [row[:4] for row in table.rows] == [
        ("", "全国", 11, 2),
        (SAPPORO, "札幌市", 5, 0),
        (CHIYODA, "千代田区", 4, 1),
        (HAKODATE, "函館市", 2, 1),
    ]
    assert table.rows[3][4] == pytest.approx(0.5)


def test_vendors(con: duckdb.DuckDBPyConnection) -> None:
    table = statistics.vendors(con)
    assert [(v, n, k) for v, n, _, k in table.rows] == [("FamilyMart", 4, 2), ("Seven-Eleven", 4, 2), ("Lawson", 3, 1)]
    assert sum(row[2] for row in table.rows) == pytest.approx(1.0)


def test_population_share(con: duckdb.DuckDBPyConnection) -> None:
    populations = _populations()
    issued = {SAPPORO: 5, CHIYODA: 4, HAKODATE: 2}
    table = statistics.population_share(con, top=2)
    national, participating, *top = table.rows
    assert national[1:4] == ("全国", sum(populations.values()), 11)
    participating_population = sum(populations[c] for c in issued)
    assert participating[1:4] == ("参加団体計", participating_population, 11)
    assert participating[4] == pytest.approx(11 / participating_population)
    expected = sorted(issued, key=lambda c: -issued[c] / populations[c])[:2]
    assert [row[0] for row in top] == expected == [CHIYODA, HAKODATE]
    assert top[0][2:] == (populations[CHIYODA], 4, pytest.approx(4 / populations[CHIYODA]))


def test_csv_output(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "off_hours.csv"
    statistics.off_hours(con, top=1).write_csv(path)
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["code", "municipality", "certificates", "outside_hours", "share (%)"],
        ["", "全国", "11", "8", "72.73"],
        [SAPPORO, "札幌市", "5", "3", "60.00"],
    ]
