"""Every CLI option that takes a time reads it by one rule (domain.japan_time.parse_instant), and instants
are shown in Japan time: `bcl backup restore --as-of` and `bcl pki crl --at` read the same text as the
same instant."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509

from streams.cli import cli

NOON_IN_JAPAN = dt.datetime(2026, 11, 12, 3, 0, tzinfo=dt.UTC)
SPELLINGS = [
    ("2026-11-12T12:00", NOON_IN_JAPAN),  # no zone: Japan time, in every command
    ("2026-11-12T12:00:00+09:00", NOON_IN_JAPAN),
    ("2026-11-12T03:00:00Z", NOON_IN_JAPAN),
    ("2026-11-12", dt.datetime(2026, 11, 11, 15, 0, tzinfo=dt.UTC)),  # a date: its start in Japan
]


def bcl(data_dir: Path, *args: str | Path) -> Any:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *map(str, args)])


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("var")
    assert bcl(data_dir, "pki", "init").exit_code == 0
    return data_dir


@pytest.mark.parametrize(("text", "instant"), SPELLINGS)
def test_restore_as_of_and_crl_at_read_the_same_instant(text: str, instant: dt.datetime, pki_dir: Path,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    restored_as_of: list[dt.datetime] = []

    def fake_restore(store: object, code: str, as_of: dt.datetime, out: Path, fmt: str, **_: object) -> int:
        restored_as_of.append(as_of)
        return 7

    monkeypatch.setattr("sinks.restore.restore", fake_restore)
    result = bcl(tmp_path, "backup", "restore", "--municipality", "131016", "--as-of", text,
                 "--out", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert restored_as_of == [instant]
    assert f"as of {instant.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat()}" in result.output

    crl_file = tmp_path / "auth.crl"
    result = bcl(pki_dir, "pki", "crl", "--at", text, "--out", crl_file)
    assert result.exit_code == 0, result.output
    crl = x509.load_der_x509_crl(crl_file.read_bytes())
    assert crl.last_update_utc == instant
    # Shown in Japan time, e.g. "next update 2026-11-13T12:00:00+09:00".
    assert "+09:00" in result.output and "+00:00" not in result.output


@pytest.mark.parametrize("command", [("backup", "restore", "--municipality", "131016", "--out", "x.parquet",
                                      "--as-of"), ("pki", "crl", "--out", "x.crl", "--at")])
def test_a_bad_time_names_the_option(command: tuple[str, ...], tmp_path: Path) -> None:
    result = bcl(tmp_path, *command, "12/11/2026")
    assert result.exit_code == 2
    assert command[-1] in result.output and "ISO 8601" in result.output


def test_backup_status_shows_japan_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sinks.restore import MunicipalityStatus

    row = MunicipalityStatus(municipality_code="131016", residents=2, records=3, last_sequence=9,
                             last_event_time=NOON_IN_JAPAN, missing=0, gaps=[])
    monkeypatch.setattr("sinks.restore.backup_status", lambda store: [row])
    result = bcl(tmp_path, "backup", "status", "--json")
    assert result.exit_code == 0, result.output
    assert '"last_event_time": "2026-11-12T12:00:00+09:00"' in result.output
