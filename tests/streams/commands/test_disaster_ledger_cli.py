"""`bcl disaster declare | ledger | refresh | import-csv` through the installed `bcl` in a subprocess, over a real
snapshot store and disaster store: the ledger built at declaration, pattern B (no backup that early: declared,
then imported from the CSV `bcl backup restore --format csv` writes), each kind of bad row refused naming its
line and column with nothing imported, a re-import keeping staff items, and the audit entries."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from domain.japan_time import format_instant
from streams.commands.exit_status import EXIT_ERROR
from streams.platform import Platform
from streams.settings import load_settings
from tests.streams.commands.test_cli_errors import TANABE, assert_one_error, backup, bcl, bcl_process  # noqa: F401
from tests.streams.kiosk_world import ANCHOR

ONAGAWA = "045811"
AFTER_LOAD = format_instant(ANCHOR)  # the backup holds 田辺市 from 30 days before ANCHOR
BEFORE_LOAD = format_instant(ANCHOR - dt.timedelta(days=31))


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done
    return done


def one_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == EXIT_ERROR, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert all(f in line for f in fragments), line
    return line


def audit(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit" / "personal-data-access.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def declare(data_dir: Path, occurred_at: str, *codes: str) -> dict[str, Any]:
    args = [w for code in codes for w in ("--municipality", code)]
    done = ok(bcl_process(data_dir, "disaster", "declare", *args, "--name", "令和8年紀伊半島沖地震", "--kind",
                          "earthquake", "--occurred-at", occurred_at, "--json"))
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def ledger(data_dir: Path, disaster_id: str, *args: str) -> dict[str, Any]:
    done = ok(bcl_process(data_dir, "disaster", "ledger", disaster_id, "--municipality", TANABE, "--json", *args))
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_declare_builds_the_ledger_and_reading_it_is_audited(backup: Path) -> None:  # noqa: F811
    declared = declare(backup, AFTER_LOAD, TANABE, ONAGAWA)
    disaster_id = declared["disaster_id"]
    onagawa, tanabe = declared["ledgers"]
    assert tanabe == {"municipality_code": TANABE, "built": True, "source": "backup", "as_of": AFTER_LOAD,
                      "residents": 3, "dwellings": 1}
    assert onagawa["built"] is False and "no backup of municipality 045811" in onagawa["reason"]
    [built] = audit(backup)
    assert (built["action"], built["municipality_code"], built["records"], built["disaster_id"]) == (
        "disaster.ledger.build", TANABE, 3, disaster_id)

    shown = ledger(backup, disaster_id)
    assert shown["counts"] == {"residents": 3, "ARRIVED_AFTER": 0, "DIED": 0, "CONDOLENCE_REVIEW": 0,
                               "MOVED_OUT": 0, "REVIEW": 0}
    assert [r["resident_code"] for r in shown["residents"]] == ["00000000001", "00000000002", "00000000003"]
    assert shown["residents"][0]["jpki_serials"] == f"{0x1000:016x}"
    assert audit(backup)[-1] | {"at": None, "actor": None} == {
        "at": None, "actor": None, "action": "disaster.ledger", "municipality_code": TANABE, "records": 3,
        "disaster_id": disaster_id, "flag": None}
    # Counts alone show no personal data: nothing to audit. A flag with nobody: nothing shown, nothing audited.
    assert "residents" not in ledger(backup, disaster_id, "--counts")
    assert ledger(backup, disaster_id, "--flag", "died")["residents"] == []
    text = ok(bcl_process(backup, "disaster", "ledger", disaster_id, "--municipality", TANABE)).stdout.splitlines()
    assert text[0].startswith("302066: 3 people, built from the backup as of ") and "タナベ イチロウ" in text[1]
    assert len(audit(backup)) == 3

    refreshed = ok(bcl_process(backup, "disaster", "refresh", disaster_id, "--json"))
    assert json.loads(refreshed.stdout)["ledgers"] == {
        ONAGAWA: {"built": False, "reason": "no backup of municipality 045811 in the snapshot store"},
        TANABE: {"built": True, "changed": 0}}
    one_error(bcl_process(backup, "disaster", "ledger", disaster_id, "--municipality", ONAGAWA),
              "no ledger of 045811", "bcl disaster import-csv")
    one_error(bcl_process(backup, "disaster", "ledger", disaster_id, "--municipality", "131016"),
              "131016 is not a municipality of disaster")


def test_declare_plain_prints_the_id_and_says_how_each_ledger_went(backup: Path) -> None:  # noqa: F811
    done = ok(bcl_process(backup, "disaster", "declare", "--municipality", TANABE, "--name", "台風", "--kind", "storm",
                          "--occurred-at", BEFORE_LOAD))
    disaster_id = done.stdout.strip()
    [line] = done.stderr.splitlines()
    assert line.startswith(f"302066: no ledger yet (the backup holds nothing of 302066 as early as {BEFORE_LOAD}")
    assert f"bcl disaster import-csv {disaster_id} --municipality 302066 FILE" in line
    assert audit(backup) == []


@pytest.fixture
def restored_csv(backup: Path, tmp_path: Path) -> Path:  # noqa: F811
    out = tmp_path / "register.csv"
    ok(bcl_process(backup, "backup", "restore", "--municipality", TANABE, "--as-of", AFTER_LOAD, "--format", "csv",
                   "--out", str(out)))
    return out


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header or list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_pattern_b_import_of_a_restore_and_reimport_keeps_staff_items(backup: Path, restored_csv: Path,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    disaster_id = declare(backup, BEFORE_LOAD, TANABE)["disaster_id"]
    imported = ok(bcl_process(backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE,
                              str(restored_csv), "--json"))
    assert json.loads(imported.stdout) == {"municipality_code": TANABE, "built": True, "source": "csv",
                                           "as_of": BEFORE_LOAD, "residents": 3, "dwellings": 1}
    assert audit(backup)[-1]["action"] == "disaster.ledger.import" and audit(backup)[-1]["records"] == 3
    first = ledger(backup, disaster_id)["residents"]
    assert [r["resident_code"] for r in first] == ["00000000001", "00000000002", "00000000003"]
    assert first[0]["jpki_serials"] == f"{0x1000:016x}" and first[0]["address"] == "和歌山県田辺市今福一丁目3番12号"

    platform = Platform(load_settings({"data_dir": backup}))
    platform.disaster_ledger.set_staff_item(disaster_id, TANABE, "00000000002", "CONTACT", "0739-00-0000", "staff-1",
                                            dt.datetime.now(dt.UTC))
    rows = rows_of(restored_csv)
    rows[1]["address_block"] = "5番1号"  # moved before the export was made again
    again = write_rows(tmp_path / "again.csv", rows[:2])
    done = ok(bcl_process(backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE, str(again)))
    assert done.stdout.startswith("302066: ledger built from the csv as of ")
    assert "2 residents, 2 dwellings" in done.stdout
    second = ledger(backup, disaster_id)["residents"]
    assert [r["resident_code"] for r in second] == ["00000000001", "00000000002"]
    assert second[1]["address"] == "和歌山県田辺市今福一丁目5番1号"
    assert platform.disaster_ledger.staff_items(disaster_id, TANABE, "00000000002") == {"CONTACT": "0739-00-0000"}


def set_(column: str, value: str) -> Any:
    def change(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[1][column] = value
        return rows
    return change


BAD_ROWS = [
    (set_("individual_number", "000000000010"), "line 3, column individual_number", "check digit"),
    (set_("resident_code", "123"), "line 3, column resident_code", "not 11 digits"),
    (set_("birth_date", "1980-13-01"), "line 3, column birth_date", "not a date"),
    (set_("sex", "M"), "line 3, column sex", "not one of MALE, FEMALE, NOT_APPLICABLE"),
    (set_("municipality_code", "045811"), "line 3, column municipality_code", "not the municipality imported"),
    (set_("family_name_kana", ""), "line 3, column family_name_kana", "empty"),
    (set_("family_name", "長" * 101), "line 3, column family_name", "longer than 100 characters"),
    (set_("address_latitude", "95"), "line 3, column address_latitude", "outside"),
    (set_("status", "GONE"), "line 3, column status", "not one of CURRENT, DELETED"),
    (set_("jpki_certificates", "[{"), "line 3, column jpki_certificates", "not JSON"),
    (set_("status", "DELETED"), "line 3, column deletion_reason", "not one of DEATH"),
    (lambda rows: [*rows, dict(rows[0])], "line 5, column resident_code", "appears twice"),
]


def test_each_bad_row_is_refused_naming_line_and_column_and_nothing_is_imported(
        capsys: pytest.CaptureFixture[str], backup: Path, restored_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    """The first through the installed `bcl` in a subprocess; every kind in this process through the same entry
    point (main()), to keep the test quick on a shared machine."""
    disaster_id = declare(backup, BEFORE_LOAD, TANABE)["disaster_id"]
    first, *_ = BAD_ROWS
    bad = write_rows(tmp_path / "bad.csv", first[0](rows_of(restored_csv)))
    one_error(bcl_process(backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE, str(bad)),
              f"{bad} {first[1]}: ", first[2])
    status, _, err = bcl(capsys, backup, "disaster", "ledger", disaster_id, "--municipality", TANABE)
    assert status == EXIT_ERROR and "no ledger of 302066" in err  # nothing half-imported
    for previous in (None, restored_csv):  # over no ledger, then over an earlier import: it stays as it was
        if previous is not None:
            assert bcl(capsys, backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE,
                       str(previous))[0] == 0
        for i, (mutate, where, why) in enumerate(BAD_ROWS):
            bad = write_rows(tmp_path / f"bad{i}.csv", mutate(rows_of(restored_csv)))
            assert_one_error(*bcl(capsys, backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE,
                                  str(bad)), EXIT_ERROR, f"{bad} {where}: ", why)
        status, out, err = bcl(capsys, backup, "disaster", "ledger", disaster_id, "--municipality", TANABE,
                               "--counts", "--json")
        assert (status, previous) == (EXIT_ERROR, None) or json.loads(out)["counts"]["residents"] == 3, err


def test_bad_files_are_refused_in_one_line(backup: Path, restored_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    disaster_id = declare(backup, BEFORE_LOAD, TANABE)["disaster_id"]
    rows = rows_of(restored_csv)

    def imported(path: Path, *fragments: str) -> None:
        one_error(bcl_process(backup, "disaster", "import-csv", disaster_id, "--municipality", TANABE, str(path)),
                  *fragments)

    header = [c for c in rows[0] if c not in ("birth_date", "sex")]
    imported(write_rows(tmp_path / "cols.csv", rows, header), "line 1: missing column(s) birth_date, sex")
    short = tmp_path / "short.csv"
    short.write_text(restored_csv.read_text().splitlines()[0] + "\n302066,00000000009\n")
    imported(short, "line 2: 33 columns expected")
    imported(tmp_path / "absent.csv", "absent.csv does not exist")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"\xff\xfe\x00")
    imported(latin, "not UTF-8")
    one_error(bcl_process(backup, "disaster", "import-csv", disaster_id, "--municipality", ONAGAWA,
                          str(restored_csv)), "045811 is not a municipality of disaster")
    one_error(bcl_process(backup, "disaster", "import-csv", "nope", "--municipality", TANABE, str(restored_csv)),
              "no disaster 'nope'")
