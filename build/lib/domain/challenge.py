"""The bytes a resident's card signs for a kiosk request: part of the CertificateRequest contract,
shared by the kiosk (which has the card sign them) and the certificate worker (which verifies)."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def challenge_bytes(request_id: str, kiosk_id: str, requested_at: dt.datetime) -> bytes:
    """`BCL-KIOSK-v1|<request id>|<kiosk id>|<requested_at as epoch milliseconds>` in UTF-8."""
    if requested_at.tzinfo is None:
        raise ValueError("requested_at must be timezone-aware")
    millis = (requested_at - EPOCH) // dt.timedelta(milliseconds=1)
    return f"BCL-KIOSK-v1|{request_id}|{kiosk_id}|{millis}".encode()
