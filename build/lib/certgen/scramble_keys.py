"""The scramble-image key of each municipality (docs/domain.md §3.1 item 3), derived from one platform
secret (Settings.scramble_key_secret): the certificate worker scrambles the back of every sheet with
it and the verification service restores scans with it, so both must call this one function.

HMAC-SHA256(secret, label + municipality code): one secret to keep instead of a key per
municipality, and a leaked municipality key reveals neither the secret nor another municipality's key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from certgen.errors import ScrambleError

# Part of the derivation: changing it changes every key, so printed certificates would no longer
# restore. Never change it for an existing deployment.
_LABEL = b"bcl/scramble-key/v1/"
_MUNICIPALITY = re.compile(r"[0-9]{6}")


def scramble_key(secret: str, municipality_code: str) -> bytes:
    """The 32-byte scramble key of a municipality (全国地方公共団体コード, 6 digits)."""
    if not secret:
        raise ScrambleError("the scramble key secret is empty")
    if not _MUNICIPALITY.fullmatch(municipality_code):
        raise ScrambleError(f"municipality code {municipality_code!r} is not 6 digits")
    return hmac.new(secret.encode(), _LABEL + municipality_code.encode(), hashlib.sha256).digest()
