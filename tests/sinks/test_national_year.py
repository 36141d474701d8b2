"""The national-year generator on a small scale: shape, realism constraints, determinism."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sinks.certificate_log import part_files, register_view
from sinks.national_year import (
    CERTIFICATE_TYPES,
    PARTICIPATING_MUNICIPALITIES,
    NationalYearError,
    build_country,
    generate_month,
    generate_year,
)

SCALE = 0.001  # about 36,000 certificates


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    store = tmp_path_factory.mktemp("national")
    return store, generate_year(store, 2025, seed=7, scale=SCALE)


@pytest.fixture()
def con(year: tuple[Path, int]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    register_view(connection, year[0])
    return connection


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchall()[0]


def test_twelve_months_of_about_the_national_volume(year: tuple[Path, int], con: duckdb.DuckDBPyConnection) -> None:
    _, written = year
    assert abs(written - 36_000_000 * SCALE) < 0.03 * 36_000_000 * SCALE
    months = con.execute("SELECT DISTINCT year * 100 + month FROM certificates_issued ORDER BY 1").fetchall()
    assert [m for (m,) in months] == [202504, 202505, 202506, 202507, 202508, 202509, 202510, 202511, 202512,
                                      202601, 202602, 202603]
    assert one(con, "SELECT count(*) FROM certificates_issued") == (written,)


def test_kiosk_hours_and_year_end_break(con: duckdb.DuckDBPyConnection) -> None:
    first, last = one(con, "SELECT min(issued_minute), max(issued_minute) FROM certificates_issued")
    assert first >= 6 * 60 + 30 and last < 23 * 60
    assert one(con, """SELECT count(*) FROM certificates_issued WHERE (month(issued_date) = 12 AND
                       day(issued_date) >= 29) OR (month(issued_date) = 1 AND day(issued_date) <= 3)""") == (0,)
    # the derived Japan date and minute agree with the stored UTC instant
    assert one(con, """SELECT count(*) FROM certificates_issued WHERE CAST(epoch_ms(issued_at) + 9 * 3600000
                       AS BIGINT) // 60000 % 1440 <> issued_minute
                       OR CAST((epoch_ms(issued_at) + 9 * 3600000) // 86400000 AS INTEGER)
                          <> CAST(issued_date - DATE '1970-01-01' AS INTEGER)""") == (0,)


def test_mix_of_types_vendors_and_other_municipality(con: duckdb.DuckDBPyConnection) -> None:
    shares = dict(con.execute("""SELECT certificate_type, count(*) / sum(count(*)) OVER () FROM certificates_issued
                                 GROUP BY ALL""").fetchall())
    assert set(shares) <= set(CERTIFICATE_TYPES)
    assert 0.50 < shares["RESIDENT_RECORD"] < 0.60 and 0.25 < shares["SEAL_REGISTRATION"] < 0.35
    vendors = dict(con.execute("""SELECT kiosk_vendor, count(*) / sum(count(*)) OVER () FROM certificates_issued
                                  GROUP BY ALL""").fetchall())
    assert 0.38 < vendors["Seven-Eleven"] < 0.52
    (elsewhere,) = one(con, "SELECT avg((kiosk_municipality_code <> municipality_code)::INT) FROM certificates_issued")
    assert 0.10 <= elsewhere <= 0.20
    assert one(con, "SELECT count(DISTINCT municipality_code) <= 1378 FROM certificates_issued") == (True,)


def test_copies_and_ids(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) = count(DISTINCT certificate_id) FROM certificates_issued") == (True,)
    assert one(con, """SELECT count(*) FROM certificates_issued WHERE NOT regexp_full_match(certificate_id,
                       '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}')""") == (0,)
    # each request has copies rows numbered 1..copies, same municipality and kiosk
    assert one(con, """SELECT count(*) FROM (SELECT request_id, any_value(copies) AS c, count(*) AS n,
                       max(copy_number) AS top, count(DISTINCT kiosk_id) AS k FROM certificates_issued
                       GROUP BY request_id) WHERE n <> c OR top <> c OR k <> 1""") == (0,)
    assert one(con, "SELECT min(fee_yen) >= 200, max(fee_yen) <= 350 FROM certificates_issued") == (True, True)


def test_deterministic_for_a_seed() -> None:
    country = build_country(seed=7)
    assert (country.join_month_index < 99).sum() == PARTICIPATING_MUNICIPALITIES
    a = generate_month(country, 2025, 2, 2_000, seed=7)
    b = generate_month(build_country(seed=7), 2025, 2, 2_000, seed=7)
    assert a.equals(b)
    assert not a.equals(generate_month(country, 2025, 2, 2_000, seed=8))


def test_refuses_to_add_to_a_generated_year_unless_replacing(year: tuple[Path, int]) -> None:
    store, written = year
    with pytest.raises(NationalYearError, match="--replace"):
        generate_year(store, 2025, seed=7, scale=SCALE)
    with pytest.raises(NationalYearError, match="scale"):
        generate_year(store, 2026, seed=7, scale=0)
    parts = len(part_files(store))
    assert generate_year(store, 2025, seed=7, scale=SCALE, replace=True) == written
    assert len(part_files(store)) == parts
