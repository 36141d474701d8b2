"""A real SQLite-backed RegisterStateSink for the disaster-ledger processor's tests (the ledger store itself is
sinks.disaster_ledger): the latest state of each resident, idempotent like the real one (a state it already
holds changes no row), and a log of every state it was handed, so that a test sees redeliveries."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.sqlite_database import immediate_transaction, open_database

# Set to make apply_register_states raise (the processor must then exit without committing the batch).
FAIL_ENVIRONMENT_VARIABLE = "BCL_TEST_SINK_FAIL"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


class SqliteRegisterStateSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._con = open_database(path)
        self._con.executescript(
            "CREATE TABLE IF NOT EXISTS states (municipality_code TEXT, resident_code TEXT, state TEXT NOT NULL, "
            "PRIMARY KEY (municipality_code, resident_code));"
            "CREATE TABLE IF NOT EXISTS handed (n INTEGER PRIMARY KEY, municipality_code TEXT, resident_code TEXT);")

    def apply_register_states(self, states: Sequence[Mapping[str, Any]]) -> int:
        if os.environ.get(FAIL_ENVIRONMENT_VARIABLE):
            raise sqlite3.OperationalError("disk I/O error (injected by the test)")
        changed = 0
        with immediate_transaction(self._con):
            for state in states:
                key = (state["municipality_code"], state["resident_code"])
                text = json.dumps(state, sort_keys=True, ensure_ascii=False, default=_plain)
                self._con.execute("INSERT INTO handed (municipality_code, resident_code) VALUES (?, ?)", key)
                held = self._con.execute("SELECT state FROM states WHERE municipality_code = ? AND resident_code = ?",
                                         key).fetchone()
                if held is not None and held[0] == text:
                    continue
                self._con.execute("INSERT OR REPLACE INTO states VALUES (?, ?, ?)", (*key, text))
                changed += 1
        return changed


def read_states(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """What the sink holds, by (municipality, resident code); {} before the processor made it."""
    if not path.exists():
        return {}
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT municipality_code, resident_code, state FROM states").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        con.close()
    return {(m, r): json.loads(s) for m, r, s in rows}


def handed_count(path: Path) -> int:
    """How many states the sink was handed in committed transactions (redeliveries included)."""
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM handed").fetchone()[0])
    finally:
        con.close()

