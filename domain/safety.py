"""Who is unaccounted for in a disaster, and what a safety inquiry (安否照会) may be told (docs/domain.md §6.6, §8).

A person of a municipality's ledger is *looked for* when their dwelling at 発災日時 is damaged (半壊 or worse:
domain.disaster_ledger.is_damaged, the one definition of "damaged") or when they are on the municipality's
避難行動要支援者名簿 (listed people are looked for whatever their dwelling). A person looked for is *accounted for*
when any of these holds, and unaccounted for otherwise:
- they are checked in now at a shelter, of any municipality (the stay is matched to their home ledger);
- staff recorded a safety confirmation (安否確認) of them: safe, injured or deceased, with how it was learnt;
- the register removed them after the disaster (a death or a move-out was notified: someone knows where they are).
Checking out of a shelter without checking in elsewhere makes a person unaccounted for again, unless confirmed.

Safety information is disclosed to an inquirer only with the person's consent recorded in the ledger (提供同意, its
recipient and its day, sinks.disaster_ledger's staff items) and only to the recipient that consent names. Any
other inquiry gets the same answer, whether the person is unknown, ambiguous or did not consent: the answer never
tells whether someone is in the ledger."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import BclError, InvalidArgumentError


class SafetyError(BclError):
    """A safety confirmation or inquiry that cannot be taken (the message says why)."""


class UnknownPersonError(SafetyError, LookupError):
    """No person of that code in the municipality's ledger of the disaster."""


class AlreadyConfirmedError(SafetyError):
    """The person's safety was confirmed before: a confirmation is recorded once."""


class SafetyStatus(StrEnum):
    """What a safety confirmation found."""

    SAFE = "SAFE"
    INJURED = "INJURED"
    DECEASED = "DECEASED"

    @property
    def japanese(self) -> str:
        return {"SAFE": "無事", "INJURED": "負傷", "DECEASED": "死亡"}[self.value]


class ConfirmationMethod(StrEnum):
    """How staff learnt it."""

    SEEN_AT_SHELTER = "SEEN_AT_SHELTER"  # seen at a shelter without checking in (no terminal, a car, a tent)
    VISITED = "VISITED"  # a visit to the dwelling or the person
    PHONED = "PHONED"  # reached by telephone
    RELATIVE = "RELATIVE"  # told by family, a neighbour or a supporter
    HOSPITAL = "HOSPITAL"  # a hospital or care facility
    POLICE_FIRE = "POLICE_FIRE"  # the police or the fire service (found, rescued, or found deceased)

    @property
    def japanese(self) -> str:
        return _METHOD_JAPANESE[self]


_METHOD_JAPANESE = {
    ConfirmationMethod.SEEN_AT_SHELTER: "避難所で確認", ConfirmationMethod.VISITED: "訪問",
    ConfirmationMethod.PHONED: "電話", ConfirmationMethod.RELATIVE: "家族・知人・支援者から",
    ConfirmationMethod.HOSPITAL: "医療機関・施設から", ConfirmationMethod.POLICE_FIRE: "警察・消防から"}


class Category(StrEnum):
    """Why a person is looked for (a person can be both) or, for SHELTERED_ELSEWHERE, where an accounted-for
    resident is: at another municipality's shelter, matched to their home ledger."""

    DAMAGED_DWELLING = "DAMAGED_DWELLING"
    LISTED = "LISTED"
    SHELTERED_ELSEWHERE = "SHELTERED_ELSEWHERE"

    @property
    def japanese(self) -> str:
        return {"DAMAGED_DWELLING": "被災住家の居住者", "LISTED": "避難行動要支援者",
                "SHELTERED_ELSEWHERE": "他市区町村の避難所に避難中"}[self.value]


class Whereabouts(StrEnum):
    """How a person looked for stands now."""

    UNACCOUNTED = "UNACCOUNTED"
    SHELTERED = "SHELTERED"  # checked in now at a shelter of their own municipality
    SHELTERED_ELSEWHERE = "SHELTERED_ELSEWHERE"  # checked in now at another municipality's shelter
    CONFIRMED = "CONFIRMED"  # a safety confirmation is recorded
    REGISTER = "REGISTER"  # the register removed them after the disaster (death, move-out)


@dataclass(frozen=True)
class PersonFacts:
    """What the store reads of one person looked for."""

    damaged_dwelling: bool
    listed: bool
    sheltered_at: str | None  # the municipality code of the shelter they are checked in at now
    confirmed: SafetyStatus | None
    register_status: str  # CURRENT or DELETED (after a death or a move-out)


def whereabouts(facts: PersonFacts, home_municipality: str) -> Whereabouts:
    """The rule of the module doc: a check-in now first (the freshest fact), then a confirmation, then the
    register; else unaccounted for."""
    if facts.sheltered_at is not None:
        return Whereabouts.SHELTERED if facts.sheltered_at == home_municipality else Whereabouts.SHELTERED_ELSEWHERE
    if facts.confirmed is not None:
        return Whereabouts.CONFIRMED
    if facts.register_status != "CURRENT":
        return Whereabouts.REGISTER
    return Whereabouts.UNACCOUNTED


@dataclass(frozen=True)
class Tally:
    """How many people looked for stand where (domain.safety.whereabouts of each, counted)."""

    looked_for: int
    by_whereabouts: dict[Whereabouts, int]
    unaccounted_by_category: dict[Category, int]
    confirmed: dict[SafetyStatus, int]


def tally(damaged: Set[str], listed: Set[str], sheltered_at: Mapping[str, str], confirmed: Mapping[str, SafetyStatus],
          removed: Set[str], home_municipality: str) -> Tally:
    """The counts of `whereabouts` over everyone looked for, by set operations (a municipality's tens of thousands
    of people at once): the same precedence, a check-in now first, then a confirmation, then the register."""
    looked = damaged | listed
    in_shelter = looked & sheltered_at.keys()
    here = {r for r in in_shelter if sheltered_at[r] == home_municipality}
    known = looked - in_shelter
    by_confirmation = known & confirmed.keys()
    by_register = (known - by_confirmation) & removed
    unaccounted = known - by_confirmation - by_register
    statuses = Counter(confirmed[r] for r in by_confirmation)
    return Tally(len(looked), {
        Whereabouts.UNACCOUNTED: len(unaccounted), Whereabouts.SHELTERED: len(here),
        Whereabouts.SHELTERED_ELSEWHERE: len(in_shelter) - len(here), Whereabouts.CONFIRMED: len(by_confirmation),
        Whereabouts.REGISTER: len(by_register)},
        {Category.DAMAGED_DWELLING: len(unaccounted & damaged), Category.LISTED: len(unaccounted & listed)},
        {status: statuses[status] for status in SafetyStatus})


def categories(facts: PersonFacts) -> tuple[Category, ...]:
    return tuple(c for c, holds in ((Category.DAMAGED_DWELLING, facts.damaged_dwelling),
                                    (Category.LISTED, facts.listed)) if holds)


@dataclass(frozen=True)
class Confirmation:
    """A safety confirmation as staff enter it."""

    status: SafetyStatus
    method: ConfirmationMethod
    confirmed_at: dt.datetime
    note: str


NOTE_MAX_CHARS = 200


def confirmation(status: str, method: str, confirmed_at: dt.datetime, note: str, *, occurred_at: dt.datetime,
                 now: dt.datetime) -> Confirmation:
    """A confirmation checked: a known status and method, a time between the disaster and now, a one-line note
    of at most NOTE_MAX_CHARS characters. InvalidArgumentError names the bad one."""
    try:
        safety = SafetyStatus(status.strip().upper())
    except ValueError:
        raise InvalidArgumentError("status", f"{status!r} is not one of {', '.join(SafetyStatus)}") from None
    try:
        how = ConfirmationMethod(method.strip().upper().replace("-", "_"))
    except ValueError:
        raise InvalidArgumentError("method", f"{method!r} is not one of {', '.join(ConfirmationMethod)}") from None
    if not occurred_at <= confirmed_at <= now:
        raise InvalidArgumentError("at", f"{confirmed_at.isoformat()} is not between the disaster "
                                         f"({occurred_at.isoformat()}) and now")
    text = " ".join(note.split())
    if len(text) > NOTE_MAX_CHARS:
        raise InvalidArgumentError("note", f"at most {NOTE_MAX_CHARS} characters, got {len(text)}")
    return Confirmation(safety, how, confirmed_at, text)


def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def may_disclose(consent_recipient: str | None, consent_on: str | None, inquirer: str) -> bool:
    """Whether an inquirer may be told a person's safety: the ledger holds the person's 提供同意 (a recipient and
    a day) and the inquirer is that recipient (compared without regard to width, case or spaces)."""
    if not consent_recipient or not consent_on or not inquirer.strip():
        return False
    return _folded(consent_recipient) == _folded(inquirer)


NOT_DISCLOSED = ("安否情報は提供できません: no safety information can be given for this inquiry (it is given only "
                 "to the recipient a person's recorded consent names)")


@dataclass(frozen=True)
class InquiryAnswer:
    """What an inquirer is told: with consent, the person's whereabouts (a shelter's name, or the confirmation);
    without, NOT_DISCLOSED and nothing else."""

    disclosed: bool
    text: str
    whereabouts: Whereabouts | None = None
    status: SafetyStatus | None = None
    shelter_name: str | None = None
    since: dt.datetime | None = None


def inquiry_answer(whereabouts_now: Whereabouts, status: SafetyStatus | None, shelter_name: str | None,
                   since: dt.datetime | None) -> InquiryAnswer:
    """The disclosed answer for a consenting person (the caller checked may_disclose)."""
    if whereabouts_now in (Whereabouts.SHELTERED, Whereabouts.SHELTERED_ELSEWHERE):
        text = f"避難所「{shelter_name}」に避難しています"
    elif whereabouts_now is Whereabouts.CONFIRMED and status is not None:
        text = f"安否確認済み: {status.japanese}"
    else:
        text = "安否は確認されていません (safety not confirmed yet)"
    return InquiryAnswer(True, text, whereabouts_now, status, shelter_name, since)


def not_disclosed() -> InquiryAnswer:
    return InquiryAnswer(False, NOT_DISCLOSED)
