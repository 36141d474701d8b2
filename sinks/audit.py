"""The audit log: every read of personal data by staff or processors is recorded (docs/domain.md §8).
JSON lines, one per read: when, who, what action, which municipality, how many records."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any

from infra.private_files import append_private_line


def record_access(audit_file: Path, action: str, municipality_code: str | list[str], records: int,
                  actor: str | None = None, **details: Any) -> None:
    """Append one line. `municipality_code` is a list when one read spans several (an analyst's query); `actor`
    is who read (a signed-in staff member's login), by default the OS user running the command."""
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "actor": getpass.getuser() if actor is None else actor,
        "action": action,
        "municipality_code": municipality_code,
        "records": records,
        **details,
    }
    # The log names who read whom (request ids, queries): private like the data it records.
    append_private_line(audit_file, json.dumps(entry, ensure_ascii=False))
