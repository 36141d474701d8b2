"""`bcl billing` through the real click entry point: JSON outputs and errors that name the bad argument."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from streams.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["billing", *args])
    return result.exit_code, result.output


def test_contribution_json() -> None:
    code, out = run("contribution", "--class", "city", "--population", "29999", "--mode", "bcl",
                    "--fiscal-year", "2023", "--join-month", "10", "--json")
    assert code == 0
    assert json.loads(out) == {"annual": 1_873_259, "billed": 936_629}
    code, out = run("contribution", "--class", "designated_city", "--population", "1000000", "--mode", "own",
                    "--fiscal-year", "2021", "--json")
    assert json.loads(out) == {"annual": 9_879_630, "billed": 9_879_630}


def test_disaster_fee_json() -> None:
    code, out = run("disaster-fee", "--population", "100000", "--fiscal-year", "2025", "--start-month", "10", "--json")
    assert code == 0
    assert json.loads(out) == {"annual": 1_185_000, "monthly": 98_750, "billed": 592_500}


def test_certificate_fees_json_and_text() -> None:
    code, out = run("certificate-fees", "--certificates", "12", "--json")
    assert (code, json.loads(out)) == (0, {"bcl_fee": 2160, "consignment_fee": 1404})
    code, out = run("certificate-fees", "--certificates", "12")
    assert code == 0 and "2,160" in out and "1,404" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["contribution", "--class", "metropolis", "--population", "1", "--mode", "bcl", "--fiscal-year", "2023"],
         "--class"),
        (["contribution", "--class", "city", "--population", "-1", "--mode", "bcl", "--fiscal-year", "2023"],
         "--population"),
        (["contribution", "--class", "city", "--population", "1", "--mode", "bcl", "--fiscal-year", "2023",
          "--join-month", "13"], "--join-month"),
        (["contribution", "--class", "city", "--population", "1", "--mode", "bcl", "--fiscal-year", "2020"],
         "--fiscal-year"),
        (["contribution", "--class", "city", "--population", "1", "--mode", "cloud", "--fiscal-year", "2023"],
         "--mode"),
        (["disaster-fee", "--population", "-3", "--fiscal-year", "2023"], "--population"),
        (["disaster-fee", "--population", "3", "--fiscal-year", "2023", "--start-month", "0"], "--start-month"),
        (["certificate-fees", "--certificates", "-1"], "--certificates"),
    ],
)
def test_bad_arguments_exit_non_zero_naming_the_argument(args: list[str], named: str) -> None:
    code, out = run(*args)
    assert code != 0
    assert named in out
