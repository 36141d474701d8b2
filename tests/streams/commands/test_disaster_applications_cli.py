"""`bcl disaster apply | applications | accept | reject` mistakes through the installed `bcl` in a subprocess,
without a card or a cluster: each is one `error:` line naming what was wrong, a non-zero exit, nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BCL = Path(sys.executable).parent / "bcl"


def bcl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")} | {"BCL_LOG_LEVEL": "warning"}
    return subprocess.run([str(BCL), "--data-dir", str(data_dir), "disaster", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Path, str]:
    data_dir = tmp_path / "var"
    done = bcl(data_dir, "declare", "--municipality", "045811", "--name", "令和8年宮城県沖地震", "--kind", "tsunami",
               "--occurred-at", "2026-11-20T14:46", "--json")
    assert done.returncode == 0, done
    return data_dir, json.loads(done.stdout)["disaster_id"]


def refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and all(w in line for w in words), line
    assert done.stdout == ""


def test_mistakes_are_one_line_and_store_nothing(declared: tuple[Path, str]) -> None:
    data_dir, disaster_id = declared
    refused(bcl(data_dir, "apply", "no-such-disaster", "--procedure", "RISAI_CERTIFICATE", "--mail", "a@example.jp",
                "--pin", "1234"), "no disaster", "no-such-disaster")
    refused(bcl(data_dir, "apply", disaster_id, "--procedure", "RISAI_CERTIFICATE", "--mail", "not-an-address",
                "--pin", "1234"), "not-an-address")
    refused(bcl(data_dir, "apply", disaster_id, "--procedure", "罹災", "--mail", "a@example.jp", "--pin", "1234"),
            "--procedure")
    refused(bcl(data_dir, "accept", "no-such-application", "--staff", "佐藤"), "no application")
    refused(bcl(data_dir, "reject", "no-such-application", "--staff", "佐藤"), "--reason")
    refused(bcl(data_dir, "sign", "BCL-DRAFT-1.garbage", "--pin", "1234"), "draft application")
    refused(bcl(data_dir, "applications", "no-such-disaster"), "no disaster")
    listed = bcl(data_dir, "applications", disaster_id, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"applications": []}, listed
