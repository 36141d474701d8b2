"""CSRF tokens of the verification page's form (signed double submit, no server-side session).

GET / gives the browser a random nonce in a cookie (HttpOnly, SameSite=Strict) and puts
HMAC(server secret, nonce) in the form as a hidden field; a POST is accepted only with both, matching.
Another site can make a browser post to the page, but can neither read the token nor set the cookie
for this origin, so its post is refused (403). The secret is random per server process: a form
served before a restart is refused once and works after reloading the page.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE = "bcl_verify_csrf"
FIELD = "csrf_token"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")


class CsrfTokens:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def valid_nonce(nonce: str | None) -> bool:
        return nonce is not None and _NONCE.fullmatch(nonce) is not None

    def token(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def accepts(self, nonce: str | None, token: str | None) -> bool:
        if not self.valid_nonce(nonce) or not token:
            return False
        assert nonce is not None
        return hmac.compare_digest(self.token(nonce), token)
