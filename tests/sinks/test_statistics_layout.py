"""The issued-certificate log's row order (each kiosk's rows together, which makes `bcl stats vendors` fast at
national scale) changes no published figure: checked on a generated log with edge cases, against the
straightforward definition computed in Python and against the same rows stored in their arrival order."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sinks import statistics
from sinks.certificate_log import LOG_SCHEMA, append_certificates, part_files, partition_dir, write_partition
from sinks.national_year import build_country, generate_month
from tests.sinks.issued_log_factory import events

SEED = 11


def _month(index: int, certificates: int) -> pa.Table:
    return generate_month(build_country(SEED), 2025, index, certificates, SEED)


def _edge_events() -> list[dict[str, Any]]:
    """The hand-made log plus a kiosk that changed vendor (K1 also under Lawson), a vendor with one kiosk
    and one certificate, and kiosk ids that are the generated ones' (a kiosk seen in both kinds of part)."""
    extra = events()
    changed = dict(extra[0], certificate_id="edge-1", kiosk_vendor="Lawson", centre="WEST")
    lone = dict(extra[1], certificate_id="edge-2", kiosk_vendor="Japan Post", kiosk_id="JPP-ONLY")
    return [*extra, changed, lone]


@pytest.fixture(scope="module")
def tables() -> list[tuple[int, int, pa.Table]]:
    """(year, month, rows) of two generated months, the second in two parts with their own dictionaries."""
    april, may = _month(0, 6_000), _month(1, 4_000)
    return [(2025, 4, april), (2025, 5, may.slice(0, 1_500)), (2025, 5, may.slice(1_500))]


def _store(root: Path, tables: list[tuple[int, int, pa.Table]], grouped: bool) -> Path:
    store = root / ("grouped" if grouped else "arrival")
    for year, month, table in tables:
        if grouped:
            write_partition(store, year, month, table)
        else:  # the rows as they came, written without the log's ordering
            folder = partition_dir(store, year, month)
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.cast(LOG_SCHEMA), folder / f"part-{len(list(folder.iterdir())):04d}.parquet")
    if grouped:
        append_certificates(store, _edge_events())
    else:  # the edge rows in reverse: an order other than the log's
        other = root / "edge"
        append_certificates(other, _edge_events())  # derives issued_date and issued_minute
        for part in part_files(other):
            target = store / part.relative_to(other)
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = pq.read_table(part).cast(LOG_SCHEMA)
            pq.write_table(rows.take(list(reversed(range(rows.num_rows)))), target)
    return store


def _runs(values: list[str]) -> int:
    return sum(1 for i, v in enumerate(values) if i == 0 or v != values[i - 1])


def test_parts_hold_each_kiosks_rows_together_in_arrival_order(tmp_path: Path) -> None:
    # Two chunks with different dictionaries, as a compaction or de-duplication concatenates them.
    month = _month(0, 5_000)
    table = pa.concat_tables([month.slice(0, 2_000).unify_dictionaries(), month.slice(2_000)])
    path = write_partition(tmp_path, 2025, 4, table)
    stored = pq.read_table(path)
    kiosks = stored["kiosk_id"].to_pylist()
    assert _runs(kiosks) == len(set(kiosks))  # each kiosk's rows are one run
    assert sorted(stored["certificate_id"].to_pylist()) == sorted(month["certificate_id"].to_pylist())
    arrival = {c: i for i, c in enumerate(month["certificate_id"].to_pylist())}
    by_kiosk: dict[str, list[int]] = defaultdict(list)
    for kiosk, certificate in zip(kiosks, stored["certificate_id"].to_pylist(), strict=True):
        by_kiosk[kiosk].append(arrival[certificate])
    assert all(positions == sorted(positions) for positions in by_kiosk.values())


def test_every_query_gives_the_same_figures_as_the_arrival_order(
    tmp_path: Path, tables: list[tuple[int, int, pa.Table]]
) -> None:
    grouped = statistics.open_statistics(_store(tmp_path, tables, grouped=True))
    arrival = statistics.open_statistics(_store(tmp_path, tables, grouped=False))
    try:
        for name in ("monthly", "fiscal_year", "off_hours", "other_municipality", "vendors", "population_share"):
            assert getattr(statistics, name)(grouped) == getattr(statistics, name)(arrival), name
        some_code = tables[0][2]["municipality_code"][0].as_py()
        assert (statistics.monthly(grouped, municipality=some_code)
                == statistics.monthly(arrival, municipality=some_code))
    finally:
        grouped.close()
        arrival.close()


def test_vendors_is_the_straightforward_definition(tmp_path: Path, tables: list[tuple[int, int, pa.Table]]) -> None:
    store = _store(tmp_path, tables, grouped=True)
    rows = pa.concat_tables([pq.read_table(p, columns=["kiosk_vendor", "kiosk_id"]).cast(
        pa.schema([pa.field("kiosk_vendor", pa.string()), pa.field("kiosk_id", pa.string())]))
        for p in part_files(store)]).to_pylist()
    certificates = Counter(r["kiosk_vendor"] for r in rows)
    kiosks: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        kiosks[r["kiosk_vendor"]].add(r["kiosk_id"])
    expected = sorted(((v, n, n / len(rows), len(kiosks[v])) for v, n in certificates.items()),
                      key=lambda row: (-row[1], row[0]))
    con = statistics.open_statistics(store)
    try:
        table = statistics.vendors(con)
    finally:
        con.close()
    assert [(v, n, k) for v, n, _, k in table.rows] == [(v, n, k) for v, n, _, k in expected]
    assert [share for _, _, share, _ in table.rows] == pytest.approx([share for _, _, share, _ in expected])
    found = {v: k for v, _, _, k in table.rows}
    assert found["Japan Post"] == len(kiosks["Japan Post"]) and "JPP-ONLY" in kiosks["Japan Post"]
    assert "K1" in kiosks["Lawson"] and "K1" in kiosks["Seven-Eleven"]  # a kiosk counted under both vendors
