"""Stays at shelters (docs/domain.md §6.6): check-in and check-out events, and a person's stays as a pure
function of their events. Pure.

Each check-in and check-out is an event made at a shelter terminal, which may be offline for hours: its id is
made on the terminal (a UUID, plus the terminal's id and its own sequence number), so that a copy sent twice is
taken once, and events reach the store in any order. Therefore nothing is decided in arrival order: a person's
stays are recomputed from *all* their events sorted by the time they happened (`stays`), so that

- a check-out that arrives before its check-in is kept (UNMATCHED for now) and applied once the check-in comes;
- a check-in at another shelter ends the stay at the first one (MOVED): people move between shelters, cars and
  1.5th/2nd-stage shelters;
- the closing of a shelter ends every stay there at its closing time (SHELTER_CLOSED), including one whose
  check-in arrives after the closing; a shelter closed and opened again has one opening period after the other,
  and a stay ends at the closing of the period it began in (a stay of the new period is not ended by the old
  closing);
- a second check-in at the shelter the person is already in changes nothing (REPEATED, a refusal the terminal
  shows; the event is kept, since an offline check-out between the two may still arrive and make it count).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import BclError


class StayAction(StrEnum):
    CHECK_IN = "CHECK_IN"
    CHECK_OUT = "CHECK_OUT"


class TokenKind(StrEnum):
    CARD = "CARD"  # the My Number card: its authentication certificate's serial, PIN verified
    QR = "QR"  # a printed registration QR (domain.shelter_pass)
    STAFF = "STAFF"  # staff entered name (kana) and birth date
    SHELTER_CLOSED = "SHELTER_CLOSED"  # the check-out of everyone when a shelter closes (no terminal)


class Outcome(StrEnum):
    """What an event did to its person's stays, given every event of theirs known so far."""

    APPLIED = "APPLIED"
    REPEATED = "REPEATED"  # a check-in where the person already was
    UNMATCHED = "UNMATCHED"  # a check-out with no check-in at that shelter before it (yet)


class Ending(StrEnum):
    CHECK_OUT = "CHECK_OUT"
    MOVED = "MOVED"
    SHELTER_CLOSED = "SHELTER_CLOSED"


class RefusalCode(StrEnum):
    """Why a terminal's event was refused outright: the reason code of its dead letter (bcl.dlq)."""

    UNKNOWN_DISASTER = "UNKNOWN_DISASTER"
    UNKNOWN_SHELTER = "UNKNOWN_SHELTER"
    SHELTER_NOT_OPEN = "SHELTER_NOT_OPEN"  # not opened for the disaster, or not open at the event's time
    NO_LEDGER = "NO_LEDGER"  # the disaster has no ledger yet: no one can be found
    UNKNOWN_PERSON = "UNKNOWN_PERSON"  # a card, QR or staff entry of no one in the disaster's ledger
    AMBIGUOUS_PERSON = "AMBIGUOUS_PERSON"  # a staff entry (or card) matching several people
    BAD_QR = "BAD_QR"  # not a registration QR, damaged, not made by this system, of another disaster
    BAD_CERTIFICATE = "BAD_CERTIFICATE"  # a card event whose certificate the intake refused
    BAD_TOKEN = "BAD_TOKEN"  # a token kind terminals do not send
    REFUSED = "REFUSED"  # anything else a terminal's event cannot be taken for


class StayError(BclError):
    """A check-in or check-out that cannot be taken (unknown shelter, person or token, closed shelter), with the
    code of its refusal."""

    def __init__(self, message: str, code: RefusalCode = RefusalCode.REFUSED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StayEvent:
    event_id: str
    action: StayAction
    shelter_id: str
    occurred_at: dt.datetime
    terminal_id: str
    terminal_sequence: int


@dataclass(frozen=True)
class Stay:
    shelter_id: str
    checked_in_at: dt.datetime
    checked_out_at: dt.datetime | None
    ended_by: Ending | None


@dataclass(frozen=True)
class OpeningPeriod:
    """A shelter open for a disaster from `opened_at` until `closed_at` (None: open now). A shelter closed and
    opened again has several, one after the other."""

    opened_at: dt.datetime
    closed_at: dt.datetime | None


def period_at(periods: Sequence[OpeningPeriod], instant: dt.datetime) -> OpeningPeriod | None:
    """The period a stay that began at `instant` belongs to: the last one opened at or before it (its closing may
    be earlier, for a closing entered afterwards with an earlier time)."""
    begun = [p for p in periods if p.opened_at <= instant]
    return max(begun, key=lambda p: p.opened_at) if begun else None


@dataclass(frozen=True)
class PersonStays:
    stays: tuple[Stay, ...]  # in time order; only the last can be open
    outcomes: Mapping[str, Outcome]  # event id → what it did

    @property
    def current(self) -> Stay | None:
        """The open stay (where the person is now), if any."""
        return self.stays[-1] if self.stays and self.stays[-1].checked_out_at is None else None


def event_order(event: StayEvent) -> tuple[dt.datetime, str, int, str]:
    """Event time first; ties (two terminals in the same millisecond) broken the same way everywhere."""
    return event.occurred_at, event.terminal_id, event.terminal_sequence, event.event_id


def stays(events: Iterable[StayEvent], openings: Mapping[str, Sequence[OpeningPeriod]]) -> PersonStays:
    """A person's stays from all their events (any order, without duplicates) and the opening periods of the
    shelters (shelter id → its periods; a shelter not in it never closed)."""
    done: list[Stay] = []
    outcomes: dict[str, Outcome] = {}
    current: Stay | None = None

    def end(at: dt.datetime, why: Ending) -> None:
        nonlocal current
        assert current is not None
        # A closing entered with a time before a check-in already taken ends that stay as it begins.
        done.append(Stay(current.shelter_id, current.checked_in_at, max(at, current.checked_in_at), why))
        current = None

    def closing(stay: Stay | None) -> dt.datetime | None:
        if stay is None:
            return None
        period = period_at(openings.get(stay.shelter_id, ()), stay.checked_in_at)
        return None if period is None else period.closed_at

    for event in sorted(events, key=event_order):
        closed = closing(current)
        if closed is not None and closed <= event.occurred_at:
            end(closed, Ending.SHELTER_CLOSED)
        if event.action is StayAction.CHECK_IN:
            if current is not None and current.shelter_id == event.shelter_id:
                outcomes[event.event_id] = Outcome.REPEATED
                continue
            if current is not None:
                end(event.occurred_at, Ending.MOVED)
            current = Stay(event.shelter_id, event.occurred_at, None, None)
            outcomes[event.event_id] = Outcome.APPLIED
        elif current is not None and current.shelter_id == event.shelter_id:
            end(event.occurred_at, Ending.CHECK_OUT)
            outcomes[event.event_id] = Outcome.APPLIED
        else:
            outcomes[event.event_id] = Outcome.UNMATCHED
    if current is not None and (closed := closing(current)) is not None:
        end(closed, Ending.SHELTER_CLOSED)
    if current is not None:
        done.append(current)
    return PersonStays(tuple(done), outcomes)


def shelter_open_at(periods: Sequence[OpeningPeriod], instant: dt.datetime) -> bool:
    """Whether a shelter with these opening periods takes an event of that instant (open in one of them)."""
    return any(p.opened_at <= instant and (p.closed_at is None or instant < p.closed_at) for p in periods)


_SPACES = re.compile(r"\s+")


def kana_key(text: str) -> str:
    """Name readings compared as staff type them: full-width/half-width (NFKC) and spaces do not matter,
    hiragana equals katakana (the register keeps katakana)."""
    folded = _SPACES.sub("", unicodedata.normalize("NFKC", text))
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in folded)


@dataclass(frozen=True)
class TerminalEvent:
    """An event as a terminal keeps and sends it: the stay event, the disaster, and the token read. The token is
    CARD {"serial", "certificate" (base64 DER)}, QR {"text"} or STAFF {"kana", "birth_date", "staff"}: the
    intake finds the person from it."""

    event: StayEvent
    disaster_id: str
    token_kind: TokenKind
    token: Mapping[str, str]


# The token key the intake sets on an event it refuses before the store sees it (streams.shelter_intake: a card
# whose certificate is not a valid JPKI one); the store refuses the event with that reason.
REFUSED_TOKEN = "refused"


class ReceiptStatus(StrEnum):
    APPLIED = "APPLIED"
    REPEATED = "REPEATED"
    UNMATCHED = "UNMATCHED"
    REFUSED = "REFUSED"  # not stored as a stay: unknown shelter or person, bad token, shelter not open


@dataclass(frozen=True)
class Receipt:
    """The intake's answer for one event: durable once given; `duplicate` when it had been taken before."""

    event_id: str
    status: ReceiptStatus
    detail: str
    duplicate: bool = False
