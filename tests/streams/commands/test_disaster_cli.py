"""`bcl disaster damage-level | support-amount | condolence | relief-loan-limit` through the installed `bcl` in a
subprocess: the JSON a script reads, the line a person reads, and each bad argument refused with one `error:`
line naming the option, a non-zero exit status and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.commands.exit_status import EXIT_USAGE

BCL = Path(sys.executable).parent / "bcl"


def bcl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "--data-dir", str(tmp_path), "disaster", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "BCL_LOG_LEVEL": "warning"})


def answer(tmp_path: Path, *args: str) -> Any:
    done = bcl(tmp_path, *args, "--json")
    assert done.returncode == 0 and done.stderr == "", done
    return json.loads(done.stdout)


@pytest.mark.parametrize(("ratio", "code", "level"), [
    ("0.5", "ZENKAI", "全壊"),
    ("0.49999999999999999999", "DAIKIBO_HANKAI", "大規模半壊"),  # a float would round this up to 0.5
    ("0.3", "CHUKIBO_HANKAI", "中規模半壊"),
    ("0", "ICHIBU_SONKAI", "準半壊に至らない（一部損壊）"),
])
def test_damage_level(tmp_path: Path, ratio: str, code: str, level: str) -> None:
    shown = answer(tmp_path, "damage-level", "--loss-ratio", ratio)
    assert (shown["code"], shown["level"], shown["loss_ratio"]) == (code, level, ratio)


def test_damage_level_json_has_the_range_of_the_level(tmp_path: Path) -> None:
    assert answer(tmp_path, "damage-level", "--loss-ratio", "0.45") == {
        "code": "DAIKIBO_HANKAI", "level": "大規模半壊", "loss_ratio": "0.45", "loss_ratio_from": 0.4,
        "loss_ratio_below": 0.5}


@pytest.mark.parametrize(("args", "expected"), [
    (["--damage", "ZENKAI", "--rebuild", "build", "--household-size", "3"],
     {"basic": 1_000_000, "additional": 2_000_000, "total": 3_000_000, "additional_payments": [2_000_000]}),
    (["--damage", "long_term_evacuation", "--rebuild", "rent", "--household-size", "2"],
     {"basic": 1_000_000, "additional": 500_000, "total": 1_500_000, "additional_payments": [500_000]}),
    (["--damage", "CHUKIBO_HANKAI", "--rebuild", "rent-then-build", "--household-size", "1"],
     {"basic": 0, "additional": 750_000, "total": 750_000, "additional_payments": [187_500, 562_500]}),
    (["--damage", "DEMOLISHED", "--rebuild", "none", "--household-size", "1"],
     {"basic": 750_000, "additional": 0, "total": 750_000, "additional_payments": []}),
    (["--damage", "HANKAI", "--rebuild", "repair", "--household-size", "4"],
     {"basic": 0, "additional": 0, "total": 0, "additional_payments": []}),
])
def test_support_amount(tmp_path: Path, args: list[str], expected: dict[str, Any]) -> None:
    assert answer(tmp_path, "support-amount", *args) == expected


@pytest.mark.parametrize(("flag", "expected"), [("--breadwinner", {"condolence": 5_000_000, "disability": 2_500_000}),
                                                ("--no-breadwinner", {"condolence": 2_500_000,
                                                                      "disability": 1_250_000})])
def test_condolence(tmp_path: Path, flag: str, expected: dict[str, int]) -> None:
    assert answer(tmp_path, "condolence", flag) == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["--head-injured"], {"limit": 1_500_000, "income_limit": None, "eligible": None}),
    (["--household-goods-lost"], {"limit": 1_500_000, "income_limit": None, "eligible": None}),
    (["--damage", "HANKAI", "--rest-demolished", "--household-size", "5", "--income", "7599999"],
     {"limit": 2_500_000, "income_limit": 7_600_000, "eligible": True}),
    (["--head-injured", "--damage", "ZENKAI", "--household-size", "2", "--income", "4300000"],
     {"limit": 3_500_000, "income_limit": 4_300_000, "eligible": False}),  # not below the income limit
    (["--dwelling-lost", "--household-size", "2", "--income", "12000000"],
     {"limit": 3_500_000, "income_limit": 12_700_000, "eligible": True}),
    (["--household-size", "3", "--income", "0"], {"limit": 0, "income_limit": 6_200_000, "eligible": False}),
])
def test_relief_loan_limit(tmp_path: Path, args: list[str], expected: dict[str, Any]) -> None:
    shown = answer(tmp_path, "relief-loan-limit", *args)
    assert {key: shown[key] for key in expected} == expected and shown["case"]


def test_without_json_a_line_for_people(tmp_path: Path) -> None:
    lines = [bcl(tmp_path, *args).stdout.strip() for args in (
        ["damage-level", "--loss-ratio", "0.5"],
        ["support-amount", "--damage", "ZENKAI", "--rebuild", "build", "--household-size", "3"],
        ["condolence", "--no-breadwinner"],
        ["relief-loan-limit", "--damage", "ZENKAI", "--household-size", "1", "--income", "100"])]
    assert lines == [
        "全壊 (ZENKAI): loss ratio 0.5",
        "基礎支援金 1,000,000 円 + 加算支援金 2,000,000 円 = 3,000,000 円 (ZENKAI 全壊, build, 3 people)",
        "災害弔慰金 2,500,000 円, 災害障害見舞金 1,250,000 円 (not the breadwinner)",
        "災害援護資金 up to 2,500,000 円 (全壊); income must be below 2,200,000 円; eligible",
    ]


@pytest.mark.parametrize(("args", "option", "fragment"), [
    (["damage-level", "--loss-ratio", "1.5"], "--loss-ratio", "from 0 to 1"),
    (["damage-level", "--loss-ratio", "-0.1"], "--loss-ratio", "from 0 to 1"),
    (["damage-level", "--loss-ratio", "half"], "--loss-ratio", "a number from 0 to 1"),
    (["damage-level"], "--loss-ratio", "Missing option"),
    (["support-amount", "--damage", "TOTAL", "--rebuild", "build", "--household-size", "2"], "--damage",
     "unknown damage code 'TOTAL'"),
    (["support-amount", "--damage", "ZENKAI", "--rebuild", "buy", "--household-size", "2"], "--rebuild", "'buy'"),
    (["support-amount", "--damage", "ZENKAI", "--rebuild", "build", "--household-size", "-1"], "--household-size",
     "at least 1"),
    (["support-amount", "--damage", "ZENKAI", "--rebuild", "build", "--household-size", "0"], "--household-size",
     "at least 1"),
    (["condolence"], "--breadwinner", "--no-breadwinner"),
    (["relief-loan-limit", "--damage", "SOMETHING"], "--damage", "unknown damage level"),
    (["relief-loan-limit", "--rest-demolished"], "--rest-demolished", "半壊 or 全壊"),
    (["relief-loan-limit", "--dwelling-lost", "--damage", "JUN_HANKAI"], "--dwelling-lost", "全壊"),
    (["relief-loan-limit", "--income", "100"], "--income", "--household-size"),
    (["relief-loan-limit", "--household-size", "2", "--income", "-5"], "--income", "negative"),
    (["relief-loan-limit", "--household-size", "-2"], "--household-size", "at least 1"),
])
def test_bad_arguments_name_the_option(tmp_path: Path, args: list[str], option: str, fragment: str) -> None:
    done = bcl(tmp_path, *args, "--json")
    assert done.returncode == EXIT_USAGE, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert option in lines[0] and fragment in lines[0], lines[0]
    assert "Traceback" not in done.stderr
