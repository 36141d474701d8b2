"""Online applications for disaster support (docs/domain.md §6.3, §6.4): the procedures, what the applicant's card
signs, the automatic match against the 被災者台帳, and which applications are duplicates. Pure: no I/O.

What is signed (BCL-APPLY-v1, docs/card_protocol.md): the ASCII bytes `BCL-APPLY-v1`, then each field of
SIGNED_FIELDS as a 4-byte big-endian length and its bytes (the layout of the kiosk's challenge,
domain.challenge.signed_bytes): the application id, the disaster, the procedure, the applicant's mail address, the
time of the application (ms since 1970 UTC, 8 bytes) and the SHA-256 of the card's certificate. The card signs them
with its authentication key (RSA PKCS#1 v1.5 over their SHA-256): changing any of them after signing — sending the
application to another disaster, another procedure, or the mails to another address — breaks the signature.

Which key signs: the authentication certificate and its 4-digit PIN, not the 署名用 certificate. JPKI meant the
signing certificate for electronic applications (e-Tax, ぴったりサービス: it carries the four basic items and makes
a legal signature); but the project's test PKI (certgen) has only the authentication hierarchy, the worker's
chain and revocation checks are those of that hierarchy, and the ledger finds a resident by the serial of the
authentication certificate (its `jpki_serials`), never by a signing certificate's subject. Signing with the
authentication key over bytes that name the application gives the same proof here (this card, its PIN, this
application) and lets the server find the applicant in the ledger; see docs/domain.md §6.3.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.challenge import encode_millis, encode_sha256, encode_text, signed_bytes
from domain.disaster_ledger import LedgerFlag
from domain.errors import BclError

VERSION = b"BCL-APPLY-v1"

SIGNED_FIELDS = (
    ("application_id", encode_text),
    ("disaster_id", encode_text),
    ("procedure", encode_text),
    ("mail_address", encode_text),
    ("applied_at", encode_millis),
    ("auth_certificate", encode_sha256),
)

# A mail address the mailer can send to: one @, no spaces or angle brackets (nothing a header could be split at).
_MAIL_ADDRESS = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+")
MAX_MAIL_ADDRESS = 254  # RFC 5321's limit of a forward path


class Procedure(StrEnum):
    """What can be applied for online: the two certificates of §6.3 and the four support procedures of §6.4."""

    RISAI_CERTIFICATE = "RISAI_CERTIFICATE"  # 罹災証明書
    HISAI_CERTIFICATE = "HISAI_CERTIFICATE"  # 被災証明書
    LIVELIHOOD_RECOVERY_SUPPORT = "LIVELIHOOD_RECOVERY_SUPPORT"  # 被災者生活再建支援金
    CONDOLENCE = "CONDOLENCE"  # 災害弔慰金
    DISABILITY_CONDOLENCE = "DISABILITY_CONDOLENCE"  # 災害障害見舞金
    RELIEF_LOAN = "RELIEF_LOAN"  # 災害援護資金


PROCEDURE_NAMES: dict[Procedure, str] = {
    Procedure.RISAI_CERTIFICATE: "罹災証明書",
    Procedure.HISAI_CERTIFICATE: "被災証明書",
    Procedure.LIVELIHOOD_RECOVERY_SUPPORT: "被災者生活再建支援金",
    Procedure.CONDOLENCE: "災害弔慰金",
    Procedure.DISABILITY_CONDOLENCE: "災害障害見舞金",
    Procedure.RELIEF_LOAN: "災害援護資金",
}

# The procedures whose outcome is the dwelling's damage level (§6.3 罹災証明書; §6.4 the support money and the
# loan limits are by level): they need the applicant's dwelling in the ledger, and they are ready to issue only
# once the dwelling is surveyed. The others are ready once accepted.
DWELLING_PROCEDURES = frozenset({Procedure.RISAI_CERTIFICATE, Procedure.LIVELIHOOD_RECOVERY_SUPPORT,
                                 Procedure.RELIEF_LOAN})


class ApplicationStatus(StrEnum):
    OPEN = "OPEN"  # waiting for staff
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


# An application of these is still open: a second one of the same applicant, disaster and procedure is refused.
OPEN_STATUSES = frozenset({ApplicationStatus.OPEN, ApplicationStatus.ACCEPTED})


class ApplicationError(BclError):
    """An application that cannot be taken, with the reason."""


class ApplicationRefusedError(ApplicationError):
    """The application was refused before it was stored (bad signature, certificate, duplicate, closed disaster)."""


class ApplicationDecisionError(ApplicationError):
    """Staff cannot accept or reject this application (unknown, already decided, no reason)."""


def procedure(value: str) -> Procedure:
    try:
        return Procedure(value.strip().upper().replace("-", "_"))
    except ValueError:
        raise ApplicationError(f"unknown procedure {value!r}: one of "
                               + ", ".join(p.value for p in Procedure)) from None


def mail_address(value: str) -> str:
    """The applicant's address as given, or ApplicationError naming what is wrong with it."""
    address = value.strip()
    if len(address) > MAX_MAIL_ADDRESS or not _MAIL_ADDRESS.fullmatch(address):
        raise ApplicationError(f"{value!r} is not a mail address the mails can be sent to (name@domain.example)")
    return address


def signed_application_bytes(application: Mapping[str, Any]) -> bytes:
    """The BCL-APPLY-v1 bytes of an application: its SIGNED_FIELDS, `auth_certificate` the certificate's DER."""
    return signed_bytes(VERSION, SIGNED_FIELDS, application)


# How long after its time an application's signature is taken: the applicant signs on the page or with the card
# client and submits within it, and a signed application cannot be replayed later (its id is unique anyway).
SIGNATURE_WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class ApplicationDraft:
    """An application before it is signed: what the card signs, with the card's certificate."""

    application_id: str
    disaster_id: str
    procedure: Procedure
    mail_address: str
    applied_at: dt.datetime  # whole milliseconds, UTC

    def to_sign(self, certificate_der: bytes) -> bytes:
        return signed_application_bytes({"application_id": self.application_id, "disaster_id": self.disaster_id,
                                         "procedure": self.procedure.value, "mail_address": self.mail_address,
                                         "applied_at": self.applied_at, "auth_certificate": certificate_der})


@dataclass(frozen=True)
class LedgerPerson:
    """A row of a disaster's ledger, as the match reads it."""

    municipality_code: str
    resident_code: str
    in_base: bool  # in the register at 発災日時
    household_number: str | None  # at 発災日時
    dwelling_id: str | None  # at 発災日時
    flags: frozenset[str]


@dataclass(frozen=True)
class Match:
    """The automatic match: whether the application matched the ledger, and why (for staff)."""

    matched: bool
    reason: str
    person: LedgerPerson | None = None


def match_application(proc: Procedure, municipalities: Collection[str], people: Sequence[LedgerPerson],
                      ledger_dwellings: Collection[str]) -> Match:
    """Match an application against the disaster's ledger (§6.3): `people` are the ledger rows whose certificate
    serials hold the applicant's, `ledger_dwellings` the dwellings of the ledger of the person's municipality.
    The applicant must be one resident of a municipality of the disaster, registered there at 発災日時, in a
    household; for a procedure by damage level, living in a dwelling of the ledger (the disaster area)."""
    if not people:
        return Match(False, "the card's certificate is not of any resident in this disaster's ledger "
                     f"(municipalities {', '.join(sorted(municipalities))}): outside the disaster area")
    if len(people) > 1:
        return Match(False, f"the card's certificate is of {len(people)} residents of the ledger: staff must check")
    person = people[0]
    if person.municipality_code not in municipalities:
        return Match(False, f"the applicant's municipality {person.municipality_code} is not of this disaster")
    if not person.in_base or LedgerFlag.ARRIVED_AFTER in person.flags:
        return Match(False, "the applicant arrived after the disaster occurred: not a resident of the disaster "
                     "area at 発災日時", person)
    if not person.household_number:
        return Match(False, "the applicant has no household in the ledger", person)
    if proc in DWELLING_PROCEDURES and (person.dwelling_id is None or person.dwelling_id not in ledger_dwellings):
        return Match(False, "the applicant's dwelling at 発災日時 is not a dwelling of the disaster area's ledger",
                     person)
    return Match(True, f"resident of {person.municipality_code}, household and dwelling in the ledger", person)


def applicant_key(match: Match, certificate_serial: str) -> str:
    """Who applied, for finding duplicates: the ledger's resident when matched (a renewed card is the same
    person), else the card's certificate serial."""
    if match.person is not None:
        return f"resident:{match.person.municipality_code}:{match.person.resident_code}"
    return f"serial:{certificate_serial}"


def ready_to_issue(proc: Procedure, status: ApplicationStatus, surveyed: bool) -> bool:
    """Whether the applicant can be told "ready to issue" (§6.3): accepted, and for a procedure by damage level,
    the dwelling surveyed."""
    return status is ApplicationStatus.ACCEPTED and (surveyed or proc not in DWELLING_PROCEDURES)


def decision_reason(value: str | None, required: bool) -> str | None:
    """A staff member's reason: required for a rejection (the applicant is mailed it), one line."""
    reason = (value or "").strip()
    if "\n" in reason or "\r" in reason:
        raise ApplicationDecisionError("the reason must be one line")
    if required and not reason:
        raise ApplicationDecisionError("a rejection needs --reason: the applicant is mailed it")
    return reason or None

