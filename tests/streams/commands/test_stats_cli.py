"""`bcl stats` through the real click entry point, on a small generated year in a temporary data dir."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data")
    result = CliRunner().invoke(cli, ["--data-dir", str(path), "stats", "generate-year", "--fiscal-year", "2025",
                                      "--scale", "0.0005", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "issued certificates for FY2025" in result.output
    return path


def run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "stats", *args])
    return result.exit_code, result.output


def test_monthly_table_csv_and_chart(data_dir: Path, tmp_path: Path) -> None:
    code, out = run(data_dir, "monthly", "--csv", str(tmp_path / "m.csv"), "--chart", str(tmp_path / "m.png"))
    assert code == 0, out
    assert "2025-04" in out and "2026-03" in out and "住民票" in out
    with open(tmp_path / "m.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["month"] == "2025-04" and len(rows) == 12
    assert all(int(r["計"]) == sum(int(r[c]) for c in ("住民票", "印鑑", "税", "その他")) for r in rows)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", ["fiscal-year", "off-hours", "other-municipality", "vendors", "population-share"])
def test_each_query_prints_a_table(data_dir: Path, tmp_path: Path, command: str) -> None:
    code, out = run(data_dir, command, "--csv", str(tmp_path / "t.csv"))
    assert code == 0, out
    assert (tmp_path / "t.csv").stat().st_size > 0
    if command in ("off-hours", "other-municipality", "population-share"):
        code, out = run(data_dir, command, "--top", "2")
        assert "全国" in out and "%" in out


def test_missing_log_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "stats", "monthly"])
    assert result.exit_code != 0
    assert "generate-year" in str(result.exception)


def test_bad_arguments_name_the_option(data_dir: Path) -> None:
    code, out = run(data_dir, "off-hours", "--top", "0")
    assert code != 0 and "--top" in out
    code, out = run(data_dir, "generate-year", "--fiscal-year", "2025", "--scale", "0")
    assert code != 0 and "--scale" in out
