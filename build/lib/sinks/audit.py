"""The audit log: every read of personal data by staff or processors is recorded (docs/domain.md §8).
JSON lines, one per read: when, who, what action, which municipality, how many records."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any


def record_access(audit_file: Path, action: str, municipality_code: str, records: int, **details: Any) -> None:
    audit_file.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "actor": getpass.getuser(),
        "action": action,
        "municipality_code": municipality_code,
        "records": records,
        **details,
    }
    with audit_file.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
