"""The ids that become file names and message keys (request, kiosk and certificate ids). Pure.

One rule for all of them, so that whatever the certificate worker accepts the issuance archive can
store: letters, digits and `. _ -`, starting with a letter or digit (never `.` or `..`, never a
path), 1 to 128 characters. A UUID fits.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 128
_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 1}}}")
ID_RULE = f"letters, digits and . _ - (starting with a letter or digit), 1-{MAX_ID_LENGTH} characters"


def is_valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
