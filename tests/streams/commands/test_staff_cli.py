"""`bcl disaster staff add | list` through the installed `bcl` in a subprocess: the password read from stdin (never
an argument), stored only as its scrypt hash, every refusal one `error:` line naming what was wrong."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from domain.staff_accounts import SignInRefused
from streams.commands.exit_status import EXIT_ERROR, EXIT_USAGE
from tests.platforms import make_platform

BCL = Path(sys.executable).parent / "bcl"
PASSWORD = "a long enough password"


def bcl(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")} | {"BCL_LOG_LEVEL": "warning"}
    return subprocess.run([str(BCL), "--data-dir", str(data_dir), "disaster", "staff", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


def refused(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert done.returncode == status, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and all(w in line for w in words), line


def test_add_reads_the_password_from_stdin_and_stores_only_its_hash(tmp_path: Path) -> None:
    data = tmp_path / "var"
    done = bcl(data, "add", "--municipality", "302066", "--name", "tanabe.sato", "--role", "supervisor",
               stdin=PASSWORD + "\n")
    assert done.returncode == 0 and "tanabe.sato (SUPERVISOR) for 302066" in done.stdout, done
    listed = bcl(data, "list")
    assert listed.stdout.split() == ["tanabe.sato", "302066", "SUPERVISOR"]
    raw = sqlite3.connect(data / "disaster" / "store.sqlite3").execute(
        "SELECT password_hash FROM staff_accounts").fetchone()[0]
    assert raw.startswith("scrypt$32768$8$1$") and PASSWORD not in raw
    accounts = make_platform(data).staff_accounts
    assert accounts.session(accounts.sign_in("tanabe.sato", PASSWORD, dt.datetime.now(dt.UTC)),
                            dt.datetime.now(dt.UTC)).municipality_code == "302066"
    with pytest.raises(SignInRefused):
        accounts.sign_in("tanabe.sato", PASSWORD.upper(), dt.datetime.now(dt.UTC))


def test_refusals_are_one_line_and_store_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    refused(bcl(data, "add", "--municipality", "302066", "--name", "x", stdin=PASSWORD), EXIT_USAGE, "--name")
    refused(bcl(data, "add", "--municipality", "302067", "--name", "tanabe.sato", stdin=PASSWORD), EXIT_USAGE,
            "--municipality")
    refused(bcl(data, "add", "--municipality", "302066", "--name", "tanabe.sato", stdin="short\n"), EXIT_USAGE,
            "password must be at least 12 characters")
    assert bcl(data, "list").stdout == ""
    assert bcl(data, "add", "--municipality", "302066", "--name", "tanabe.sato", stdin=PASSWORD).returncode == 0
    refused(bcl(data, "add", "--municipality", "045811", "--name", "tanabe.sato", stdin=PASSWORD), EXIT_ERROR,
            "exists")
