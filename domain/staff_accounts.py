"""Staff accounts of disaster support (docs/domain.md §6, §8): who may sign in to the staff pages, for which
municipality and in which role; what a login and a password must be; when failed sign-ins lock an account.

Pure rules; the accounts, their password hashes and sessions are kept by sinks.staff_accounts."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from domain.codes import is_valid_municipality_code
from domain.errors import BclError, InvalidArgumentError

# A password shorter than this is refused when the account is made (NIST SP 800-63B asks at least 8; staff
# pages show personal data of a whole municipality).
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 256
# Failed sign-ins in a row after which an account is locked, and for how long (a wrong password typed a few
# times is a person; more is someone trying passwords).
MAX_FAILED_SIGN_INS = 5
LOCKOUT = dt.timedelta(minutes=15)
# A session ends this long after sign-in, whatever happens (a shift), or after this long unused.
SESSION_LIFETIME = dt.timedelta(hours=10)
SESSION_IDLE = dt.timedelta(hours=1)

_LOGIN = re.compile(r"[a-z][a-z0-9._-]{1,63}")


class StaffRole(StrEnum):
    """CLERK enters and reads; SUPERVISOR also registers areas (a level for a whole zone at once)."""

    CLERK = "CLERK"
    SUPERVISOR = "SUPERVISOR"


class SignInRefused(BclError):
    """A sign-in that does not open a session. One message whatever the cause (unknown login, wrong password),
    so that the page does not tell which logins exist; a locked account says so and until when."""


@dataclass(frozen=True)
class StaffMember:
    """A signed-in staff member: what every read and write of the staff pages is restricted to."""

    login: str
    municipality_code: str
    role: StaffRole

    @property
    def may_register_areas(self) -> bool:
        return self.role is StaffRole.SUPERVISOR


def staff_login(value: str) -> str:
    """A login: lower-case ASCII letter first, then letters, digits, '.', '_' or '-', 2 to 64 characters."""
    login = value.strip()
    if not _LOGIN.fullmatch(login):
        raise InvalidArgumentError("name", f"{login!r} is not a login: 2 to 64 characters, a lower-case letter "
                                           "first, then lower-case letters, digits, '.', '_' or '-'")
    return login


def staff_municipality(value: str) -> str:
    code = value.strip()
    if not is_valid_municipality_code(code):
        raise InvalidArgumentError("municipality", f"{code!r} is not a municipality code (6 digits with its check "
                                                   "digit, e.g. 302066)")
    return code


def check_password(password: str) -> None:
    """A new password: long enough, not absurdly long (the hash reads all of it), not all one character."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgumentError("password", f"must be at least {MIN_PASSWORD_CHARS} characters, got "
                                               f"{len(password)}")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidArgumentError("password", f"must be at most {MAX_PASSWORD_CHARS} characters")
    if len(set(password)) < 4:
        raise InvalidArgumentError("password", "must have at least 4 different characters")


def locked_until(failed_in_a_row: int, last_failure: dt.datetime) -> dt.datetime | None:
    """When an account with that many failed sign-ins in a row opens again (None: it is not locked)."""
    return last_failure + LOCKOUT if failed_in_a_row >= MAX_FAILED_SIGN_INS else None


def session_expiry(signed_in_at: dt.datetime, last_used_at: dt.datetime) -> dt.datetime:
    """When a session ends: SESSION_IDLE after its last use, at the latest SESSION_LIFETIME after sign-in."""
    return min(signed_in_at + SESSION_LIFETIME, last_used_at + SESSION_IDLE)
