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
  check-in arrives after the closing;
- a second check-in at the shelter the person is already in changes nothing (REPEATED, a refusal the terminal
  shows; the event is kept, since an offline check-out between the two may still arrive and make it count).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
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


class StayError(BclError):
    """A check-in or check-out that cannot be taken (unknown shelter, person or token, closed shelter)."""


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


def stays(events: Iterable[StayEvent], closings: Mapping[str, dt.datetime]) -> PersonStays:
    """A person's stays from all their events (any order, without duplicates) and the closing times of the
    shelters that closed (shelter id → when)."""
    done: list[Stay] = []
    outcomes: dict[str, Outcome] = {}
    current: Stay | None = None

    def end(at: dt.datetime, why: Ending) -> None:
        nonlocal current
        assert current is not None
        done.append(Stay(current.shelter_id, current.checked_in_at, at, why))
        current = None

    for event in sorted(events, key=event_order):
        closed = None if current is None else closings.get(current.shelter_id)
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
    if current is not None and (closed := closings.get(current.shelter_id)) is not None:
        end(max(closed, current.checked_in_at), Ending.SHELTER_CLOSED)
    if current is not None:
        done.append(current)
    return PersonStays(tuple(done), outcomes)


def shelter_open_at(opened_at: dt.datetime, closed_at: dt.datetime | None, instant: dt.datetime) -> bool:
    """Whether a shelter opened at `opened_at` (and closed at `closed_at`) takes an event of that instant."""
    return opened_at <= instant and (closed_at is None or instant < closed_at)


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
