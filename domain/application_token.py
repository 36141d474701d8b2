"""The two texts that carry an online application between the resident's page and the card (docs/domain.md §6.3):
the *draft* the page gives the resident to sign, and the *signed* application the card client gives back. Pure.

Why texts: no browser here can reach a PC/SC reader, so the page cannot talk to the card. The page makes the draft
(its id and time chosen by the server) and shows it as one line; the resident runs `bcl disaster sign DRAFT --pin
…` on the machine with the card reader, which reads the card's authentication certificate, has the card sign the
draft's BCL-APPLY-v1 bytes (domain.disaster_applications) and prints one line, pasted back into the page. Neither
text needs protecting: the draft is what the resident reads and agrees to, the signed text is checked by the
server (signature over exactly those fields, certificate chain and revocation, freshness), and it holds no PIN.

Format: `BCL-DRAFT-1.` or `BCL-SIGNED-1.` followed by the unpadded base64url of a JSON object: the draft's fields
(applied_at in ms since 1970 UTC), and for the signed text also `certificate` and `signature` in base64.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from domain.disaster_applications import ApplicationDraft, ApplicationError, procedure

DRAFT_PREFIX = "BCL-DRAFT-1."
SIGNED_PREFIX = "BCL-SIGNED-1."
MAX_TOKEN = 16_384  # a certificate of ~1.5 KB and a signature of 256 bytes fit many times over


def _encode(prefix: str, values: dict[str, Any]) -> str:
    raw = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(prefix: str, text: str, what: str) -> dict[str, Any]:
    text = "".join(text.split())
    if len(text) > MAX_TOKEN or not text.startswith(prefix):
        raise ApplicationError(f"that is not a {what} (it starts with {prefix})")
    body = text[len(prefix):]
    try:
        values = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise ApplicationError(f"the {what} is damaged (copy the whole line): {exc}") from None
    if not isinstance(values, dict):
        raise ApplicationError(f"the {what} is damaged (copy the whole line)")
    return values


def _draft_values(draft: ApplicationDraft) -> dict[str, Any]:
    return {"application_id": draft.application_id, "disaster_id": draft.disaster_id,
            "procedure": draft.procedure.value, "mail_address": draft.mail_address,
            "applied_at": int(draft.applied_at.timestamp() * 1000)}


def _draft(values: dict[str, Any], what: str) -> ApplicationDraft:
    try:
        applied_ms = values["applied_at"]
        if not isinstance(applied_ms, int):
            raise TypeError("applied_at")
        return ApplicationDraft(str(values["application_id"]), str(values["disaster_id"]),
                                procedure(str(values["procedure"])), str(values["mail_address"]),
                                dt.datetime.fromtimestamp(applied_ms / 1000, dt.UTC))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ApplicationError(f"the {what} is damaged (copy the whole line): {exc}") from None


def draft_text(draft: ApplicationDraft) -> str:
    return _encode(DRAFT_PREFIX, _draft_values(draft))


def read_draft(text: str) -> ApplicationDraft:
    return _draft(_decode(DRAFT_PREFIX, text, "draft application"), "draft application")


def signed_text(draft: ApplicationDraft, certificate_der: bytes, signature: bytes) -> str:
    return _encode(SIGNED_PREFIX, {**_draft_values(draft), "certificate": base64.b64encode(certificate_der).decode(),
                                   "signature": base64.b64encode(signature).decode()})


def read_signed(text: str) -> tuple[ApplicationDraft, bytes, bytes]:
    """The draft, the card's certificate (DER) and its signature of a signed application text."""
    what = "signed application"
    values = _decode(SIGNED_PREFIX, text, what)
    try:
        certificate = base64.b64decode(str(values["certificate"]), validate=True)
        signature = base64.b64decode(str(values["signature"]), validate=True)
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ApplicationError(f"the {what} is damaged (copy the whole line): {exc}") from None
    return _draft(values, what), certificate, signature
