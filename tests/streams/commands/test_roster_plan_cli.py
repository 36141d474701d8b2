"""`bcl roster plan` and `plan-pdf` through the real entry point on a real disaster store: a person listed by the
roster's own rule (their register record and welfare status applied to the store, as the processor does) gets a
個別避難計画 with supporters and a shelter of the shipped open data; the PDF holds it (pdftotext); an unknown shelter,
one of another municipality, a malformed supporter, or a person who is not listed is refused in one line."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from streams.cli import EXIT_ERROR, EXIT_USAGE
from tests.factories import make_resident
from tests.platforms import make_platform
from tests.streams.commands.test_cli_errors import assert_one_error, bcl

TANABE = "302066"
SHELTER = "E3020600001111"  # 田辺工業高等学校, a designated shelter of 田辺市
ONAGAWA_SHELTER = "E0458100006111"  # 旭が丘集会所 of 女川町


@pytest.fixture
def listed(tmp_path: Path) -> str:
    """Resident 1 of 田辺市, 要介護4 at home: on the list."""
    roster = make_platform(tmp_path).evacuation_roster
    roster.apply([make_resident(TANABE, 1, birth_date=dt.date(1940, 4, 1))],
                 [{"municipality_code": TANABE, "resident_code": f"{1:011d}", "care_level": "CARE_4",
                   "event_time": dt.datetime.now(dt.UTC), "living_at_home": True}], dt.date(2026, 12, 2))
    roster.store.close()
    return f"{1:011d}"


def test_a_plan_is_stored_shown_and_printed(capsys: pytest.CaptureFixture[str], tmp_path: Path, listed: str) -> None:
    status, out, err = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident", listed)
    assert status == 0 and json.loads(out) is None, err
    status, out, err = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident", listed,
                           "--supporter", "田辺　花子:長女:090-0000-0001", "--supporter", "佐藤　次郎:民生委員:",
                           "--shelter", SHELTER, "--route", "県道を北へ徒歩10分", "--needs", "車椅子、介助者1名")
    assert status == 0, err
    status, out, err = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident", listed)
    shown = json.loads(out)
    assert [s["name"] for s in shown["supporters"]] == ["田辺　花子", "佐藤　次郎"]
    assert shown["shelter"]["shelter_id"] == SHELTER and shown["shelter"]["name"] == "田辺工業高等学校"
    pdf = tmp_path / "plan.pdf"
    status, out, err = bcl(capsys, tmp_path, "roster", "plan-pdf", "--municipality", TANABE, "--resident", listed,
                           "--out", str(pdf))
    assert status == 0, err
    text = "".join(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                                  check=True).stdout.split())
    for item in ("個別避難計画", "田辺一郎", "要介護4", "避難支援等実施者", "田辺花子", "長女", "090-0000-0001",
                 "民生委員", "田辺工業高等学校", "指定避難所", "県道を北へ徒歩10分", "車椅子、介助者1名"):
        assert item in text, item
    audit = make_platform(tmp_path).settings.audit_file.read_text()
    assert '"roster.plan"' in audit and '"roster.plan.pdf"' in audit


@pytest.mark.parametrize(("args", "expected", "fragments"), [
    (["--supporter", "a:b:c", "--shelter", "E9999999999999"], EXIT_USAGE, ["--shelter", "E9999999999999"]),
    (["--supporter", "a:b:c", "--shelter", ONAGAWA_SHELTER], EXIT_USAGE, ["--shelter", "045811"]),
    (["--supporter", "only-a-name", "--shelter", SHELTER], EXIT_USAGE, ["--supporter"]),
    (["--supporter", "a:b:c"], EXIT_USAGE, ["--shelter"]),
    (["--shelter", SHELTER], EXIT_USAGE, ["--supporter"]),
])
def test_bad_plans_are_refused_naming_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path, listed: str,
                                                 args: list[str], expected: int, fragments: list[str]) -> None:
    status, out, err = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident", listed, *args)
    assert_one_error(status, out, err, expected, *fragments)
    status, out, _ = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident", listed)
    assert json.loads(out) is None  # nothing stored


def test_a_person_not_on_the_list_has_no_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              listed: str) -> None:
    status, out, err = bcl(capsys, tmp_path, "roster", "plan", "--municipality", TANABE, "--resident",
                           "00000000002", "--supporter", "a:b:c", "--shelter", SHELTER)
    assert_one_error(status, out, err, EXIT_ERROR, "00000000002", "not on the list")
