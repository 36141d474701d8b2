"""Staff accounts and their sessions, in the disaster store's file (sinks.disaster_store: SQLite WAL,
synchronous=FULL), for the staff pages (streams.staff_web).

- `staff_accounts`: one row per login: its municipality and role, the password's scrypt hash (hashlib.scrypt,
  N=2**15, r=8, p=1, a random 16-byte salt per account; stored as `scrypt$N$r$p$salt$hash`, base64), and the
  failed sign-ins in a row (domain.staff_accounts.locked_until locks the account after MAX_FAILED_SIGN_INS).
- `staff_sessions`: server-side sessions. The browser holds a random 32-byte token (a cookie); the table holds
  only its SHA-256, so that a copy of the database opens no session. A session ends at sign-out, after
  SESSION_IDLE unused or SESSION_LIFETIME after sign-in (domain.staff_accounts.session_expiry). Server-side rows
  rather than signed tokens: sign-out ends a session at once, and sessions survive a
  restart of the page's process (a SIGKILL included) without a signing key to keep.

The password is never stored, logged or compared in plain text; an unknown login costs the same scrypt as a
wrong password, so the time of a refusal does not tell which logins exist."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets

from domain.errors import BclError
from domain.staff_accounts import (
    SignInRefused,
    StaffMember,
    StaffRole,
    check_password,
    locked_until,
    session_expiry,
    staff_login,
    staff_municipality,
)
from sinks.disaster_store import DisasterStore

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # 128·N·r = 32 MiB, and OpenSSL's own overhead
# A session's last use is written at most this often (each page view would otherwise be a durable write).
_TOUCH_EVERY = dt.timedelta(minutes=1)

_TABLES = """
    CREATE TABLE IF NOT EXISTS staff_accounts (
        login TEXT PRIMARY KEY, municipality_code TEXT NOT NULL, role TEXT NOT NULL, password_hash TEXT NOT NULL,
        failed_in_a_row INTEGER NOT NULL DEFAULT 0, last_failure_at INTEGER, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS staff_sessions (
        token_hash TEXT PRIMARY KEY, login TEXT NOT NULL,
        signed_in_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL);
"""

REFUSED = "the login or the password is wrong (after 5 failures in a row the account is locked for 15 minutes)"


class StaffAccountError(BclError):
    pass


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                            maxmem=_SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                               maxmem=_SCRYPT_MAXMEM, dklen=32)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


# Compared against when the login is unknown: the refusal then costs what a wrong password costs.
@functools.cache
def _unknown_login_hash() -> str:
    # Made on first use, not at import: a scrypt costs about 0.1 s, which every `bcl` command would pay.
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffAccounts:
    def __init__(self, store: DisasterStore) -> None:
        self._store = store
        self._con = store.connection
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    def add(self, municipality_code: str, login: str, password: str, role: StaffRole, now: dt.datetime) -> StaffMember:
        """A new account, durable when this returns; refused if the login exists."""
        member = StaffMember(staff_login(login), staff_municipality(municipality_code), role)
        check_password(password)
        hashed = hash_password(password)
        with self._store.transaction():
            if self._con.execute("SELECT 1 FROM staff_accounts WHERE login=?", (member.login,)).fetchone():
                raise StaffAccountError(f"a staff account {member.login!r} exists already")
            self._con.execute("INSERT INTO staff_accounts (login, municipality_code, role, password_hash, created_at) "
                              "VALUES (?, ?, ?, ?, ?)", (member.login, member.municipality_code, member.role.value,
                                                         hashed, _ms(now)))
        return member

    def accounts(self) -> list[StaffMember]:
        rows = self._con.execute("SELECT login, municipality_code, role FROM staff_accounts ORDER BY login")
        return [StaffMember(login, code, StaffRole(role)) for login, code, role in rows]

    def sign_in(self, login: str, password: str, now: dt.datetime) -> str:
        """A new session's token, or SignInRefused (one message for every cause). A failure is counted durably:
        a restart does not reset a lockout."""
        row = self._con.execute("SELECT password_hash, failed_in_a_row, last_failure_at FROM staff_accounts "
                                "WHERE login=?", (login.strip(),)).fetchone()
        if row is None:
            password_matches(password, _unknown_login_hash())
            raise SignInRefused(REFUSED)
        stored, failed, last_failure = row
        until = None if last_failure is None else locked_until(failed, _instant(last_failure))
        matches = password_matches(password, stored)  # even when locked: the same time either way
        if until is not None and now < until:
            raise SignInRefused(REFUSED)
        if not matches:
            with self._store.transaction():
                # After a lockout ran out, the count starts again.
                self._con.execute("UPDATE staff_accounts SET failed_in_a_row=CASE WHEN ?1 THEN 1 ELSE "
                                  "failed_in_a_row + 1 END, last_failure_at=?2 WHERE login=?3",
                                  (until is not None, _ms(now), login.strip()))
            raise SignInRefused(REFUSED)
        token = secrets.token_urlsafe(32)
        with self._store.transaction():
            self._con.execute("UPDATE staff_accounts SET failed_in_a_row=0, last_failure_at=NULL WHERE login=?",
                              (login.strip(),))
            self._con.execute("INSERT INTO staff_sessions VALUES (?, ?, ?, ?)",
                              (_token_hash(token), login.strip(), _ms(now), _ms(now)))
        return token

    def session(self, token: str | None, now: dt.datetime) -> StaffMember | None:
        """The staff member of a live session (its last use noted), else None (an ended session is removed)."""
        if not token:
            return None
        key = _token_hash(token)
        row = self._con.execute(
            "SELECT s.signed_in_at, s.last_used_at, a.login, a.municipality_code, a.role FROM staff_sessions s "
            "JOIN staff_accounts a USING (login) WHERE s.token_hash=?", (key,)).fetchone()
        if row is None:
            return None
        signed_in, last_used, login, code, role = row
        if now >= session_expiry(_instant(signed_in), _instant(last_used)):
            with self._store.transaction():
                self._con.execute("DELETE FROM staff_sessions WHERE token_hash=?", (key,))
            return None
        if now - _instant(last_used) >= _TOUCH_EVERY:
            with self._store.transaction():
                self._con.execute("UPDATE staff_sessions SET last_used_at=? WHERE token_hash=?", (_ms(now), key))
        return StaffMember(login, code, StaffRole(role))

    def sign_out(self, token: str | None) -> None:
        if token:
            with self._store.transaction():
                self._con.execute("DELETE FROM staff_sessions WHERE token_hash=?", (_token_hash(token),))
