"""`bcl roster` through the real entry point (streams.cli.main), without a cluster: the criteria of a municipality
are stored durably and shown again by another command; a user's mistakes (an unknown municipality, a bad criterion
or grade, a consent decision that is not one, consent for someone who is not on the list) give one `error:` line
naming what was wrong, no traceback, and change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.cli import EXIT_ERROR, EXIT_USAGE
from tests.streams.commands.test_cli_errors import UNKNOWN, assert_one_error, bcl

TANABE = "302066"


def test_criteria_are_stored_and_shown_again(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = bcl(capsys, tmp_path, "roster", "criteria", "--municipality", TANABE)
    assert status == 0
    assert json.loads(out) == {"care_levels": ["CARE_3", "CARE_4", "CARE_5"], "physical_up_to": 2,
                               "intellectual_grades": ["A"], "mental_up_to": 1, "intractable_disease": True,
                               "elderly_age": 75}
    status, out, err = bcl(capsys, tmp_path, "roster", "criteria", "--municipality", TANABE, "--care-levels",
                           "要介護2,要介護3", "--elderly-age", "none", "--no-intractable-disease")
    assert status == 0, err
    status, out, _ = bcl(capsys, tmp_path, "roster", "criteria", "--municipality", TANABE)
    assert json.loads(out) == {"care_levels": ["CARE_2", "CARE_3"], "physical_up_to": 2, "intellectual_grades": ["A"],
                               "mental_up_to": 1, "intractable_disease": False, "elderly_age": None}
    status, out, _ = bcl(capsys, tmp_path, "roster", "criteria", "--municipality", TANABE, "--defaults")
    assert status == 0 and json.loads(out)["elderly_age"] == 75


@pytest.mark.parametrize(("args", "expected", "fragments"), [
    (["roster", "list", "--municipality", UNKNOWN], EXIT_ERROR, [UNKNOWN]),
    (["roster", "sweep", "--municipality", UNKNOWN], EXIT_ERROR, [UNKNOWN]),
    (["roster", "criteria", "--municipality", UNKNOWN, "--physical-up-to", "1"], EXIT_ERROR, [UNKNOWN]),
    (["roster", "criteria", "--municipality", TANABE, "--care-levels", "要介護9"], EXIT_USAGE,
     ["--care-levels", "要介護9"]),
    (["roster", "criteria", "--municipality", TANABE, "--physical-up-to", "7"], EXIT_USAGE, ["--physical-up-to"]),
    (["roster", "criteria", "--municipality", TANABE, "--mental-up-to", "x"], EXIT_USAGE, ["--mental-up-to"]),
    (["roster", "criteria", "--municipality", TANABE, "--intellectual", "C"], EXIT_USAGE, ["--intellectual"]),
    (["roster", "list", "--municipality", TANABE, "--criterion", "wealthy"], EXIT_USAGE, ["--criterion", "wealthy"]),
    (["roster", "consent", "--municipality", TANABE, "--resident", "00000000001", "--decision", "maybe"],
     EXIT_USAGE, ["--decision", "maybe"]),
    (["roster", "consent", "--municipality", TANABE, "--resident", "00000000001", "--decision", "given"],
     EXIT_ERROR, ["00000000001", "not on the list"]),
    (["roster", "phone", "--municipality", TANABE, "--resident", "00000000001", "--number", "0739"],
     EXIT_ERROR, ["not on the list"]),
])
def test_mistakes_give_one_line_naming_what_was_wrong(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      args: list[str], expected: int, fragments: list[str]) -> None:
    status, out, err = bcl(capsys, tmp_path, *args)
    assert_one_error(status, out, err, expected, *fragments)
    assert "Traceback" not in err
