"""`bcl disaster declare | list | close` through the installed `bcl` in a subprocess, without a cluster (declaring
needs none: the declaration is acknowledged once it is in the disaster store). Each bad input is refused with one
`error:` line naming what was wrong, a non-zero exit status, no traceback, and nothing written."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.commands.exit_status import EXIT_ERROR, EXIT_USAGE
from tests.streams.commands.cli_refusals import refused

BCL = Path(sys.executable).parent / "bcl"
GOOD = {"--municipality": "302066", "--name": "令和8年紀伊半島沖地震", "--kind": "earthquake",
        "--occurred-at": "2026-11-20T14:46"}


def bcl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")} | {"BCL_LOG_LEVEL": "warning"}
    return subprocess.run([str(BCL), "--data-dir", str(data_dir), "disaster", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def declare_args(**changes: str | None) -> list[str]:
    options = GOOD | {f"--{k.replace('_', '-')}": v for k, v in changes.items()}
    return [word for option, value in options.items() if value is not None for word in (option, value)]


def listing(data_dir: Path) -> Any:
    done = bcl(data_dir, "list", "--json")
    assert done.returncode == 0 and done.stderr == "", done
    return json.loads(done.stdout)


def test_declare_list_and_close(tmp_path: Path) -> None:
    done = bcl(tmp_path, "declare", *declare_args(), "--municipality", "045811", "--json")
    assert done.returncode == 0 and done.stderr == "", done
    declared = json.loads(done.stdout)
    assert declared["municipality_codes"] == ["045811", "302066"] and declared["kind"] == "earthquake"
    assert declared["occurred_at"] == "2026-11-20T14:46:00+09:00" and declared["closed_at"] is None

    plain = bcl(tmp_path, "declare", *declare_args(name="令和8年 宮城県沖地震", kind="TSUNAMI"))
    assert plain.returncode == 0, plain
    second = plain.stdout.strip()  # the id alone, for scripts

    shown = listing(tmp_path)
    assert [d["disaster_id"] for d in shown["disasters"]] == [declared["disaster_id"], second]
    assert shown["disasters"][1]["kind"] == "tsunami" and shown["events"] == {"published": 0, "unpublished": 2}
    text = bcl(tmp_path, "list").stdout
    assert "令和8年紀伊半島沖地震" in text and "2 events not yet published: run `bcl disaster relay`" in text

    closed = bcl(tmp_path, "close", second, "--at", "2026-12-01T09:00", "--json")
    assert closed.returncode == 0, closed
    assert json.loads(closed.stdout)["closed_at"] == "2026-12-01T09:00:00+09:00"
    assert listing(tmp_path)["events"] == {"published": 0, "unpublished": 3}

    # The store holds personal data later (staff entries): owner-only, and durable (WAL, synchronous=FULL).
    store = tmp_path / "disaster" / "store.sqlite3"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600 and stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    with sqlite3.connect(store) as con:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(("changes", "words"), [
    ({"municipality": "302067"}, ["'--municipality'", "'302067'", "not a known municipality"]),  # bad check digit
    ({"municipality": None}, ["--municipality"]),
    ({"name": "  "}, ["'--name'", "needs a name"]),
    ({"name": "地" * 101}, ["'--name'", "at most 100"]),
    ({"kind": "meteor"}, ["'--kind'", "meteor"]),
    ({"occurred_at": "2099-01-01"}, ["'--occurred-at'", "future"]),
    ({"occurred_at": "yesterday"}, ["'--occurred-at'", "ISO 8601"]),
    ({"occurred_at": "2026-02-30T10:00"}, ["'--occurred-at'", "2026-02-30"]),
])
def test_a_bad_declaration_is_refused_and_nothing_is_written(tmp_path: Path, changes: dict[str, str | None],
                                                             words: list[str]) -> None:
    refused(bcl(tmp_path, "declare", *declare_args(**changes)), EXIT_USAGE, *words)
    assert not (tmp_path / "disaster").exists()


def test_closing_twice_an_unknown_id_or_at_a_bad_time_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    disaster_id = bcl(tmp_path, "declare", *declare_args()).stdout.strip()
    before = listing(tmp_path)
    refused(bcl(tmp_path, "close", disaster_id, "--at", "2026-11-19T00:00"), EXIT_USAGE, "'--at'",
            "before the disaster occurred")
    refused(bcl(tmp_path, "close", disaster_id, "--at", "2099-01-01"), EXIT_USAGE, "'--at'", "future")
    refused(bcl(tmp_path, "close", "no-such-disaster"), EXIT_ERROR, "'no-such-disaster'", "bcl disaster list")
    assert listing(tmp_path) == before

    assert bcl(tmp_path, "close", disaster_id).returncode == 0
    after = listing(tmp_path)
    refused(bcl(tmp_path, "close", disaster_id), EXIT_ERROR, disaster_id, "closed already")
    assert listing(tmp_path) == after and after["events"]["unpublished"] == 2
