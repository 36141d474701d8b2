"""Declaring and closing a disaster (docs/domain.md §6): what a declaration must say and when it may be closed.

A disaster is declared for one or more municipalities, with a name, the kind of hazard and the moment it
occurred (発災日時): the instant the ledgers are built as of. It stays declared (certificates, applications)
until it is closed. These rules check what staff typed before anything is stored; each refusal names the
value that was wrong (`argument` is the option's name: `occurred_at` is `--occurred-at`).

Instants are aware datetimes; they are kept to the millisecond, the precision of the events that carry them
(timestamp-millis), so that what the store holds and what it publishes are the same instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from domain.errors import BclError, InvalidArgumentError
from domain.japan_time import format_instant
from domain.municipalities import is_known_municipality

# A name is what staff and residents read on pages and certificates (e.g. 令和8年能登半島地震): one line.
MAX_NAME_LENGTH = 100


class DisasterKind(StrEnum):
    """The hazard (災害の種類)."""

    EARTHQUAKE = "earthquake"
    TSUNAMI = "tsunami"
    FLOOD = "flood"
    LANDSLIDE = "landslide"
    STORM = "storm"  # typhoons and gales (台風・暴風)
    FIRE = "fire"
    VOLCANO = "volcano"

    @property
    def japanese(self) -> str:
        """The kind as a certificate names the cause (罹災原因)."""
        return _KIND_JAPANESE[self]


_KIND_JAPANESE: Mapping[DisasterKind, str] = MappingProxyType({
    DisasterKind.EARTHQUAKE: "地震", DisasterKind.TSUNAMI: "津波", DisasterKind.FLOOD: "洪水・浸水",
    DisasterKind.LANDSLIDE: "土砂災害", DisasterKind.STORM: "風水害", DisasterKind.FIRE: "火災",
    DisasterKind.VOLCANO: "噴火",
})


class UnknownDisasterError(BclError, LookupError):
    """No disaster of that id was declared."""


class DisasterClosedError(BclError):
    """The disaster was closed already: closing is final."""


@dataclass(frozen=True)
class Declaration:
    """A checked declaration, not yet stored."""

    name: str
    kind: DisasterKind
    municipality_codes: tuple[str, ...]  # sorted, each once
    occurred_at: dt.datetime  # UTC, to the millisecond


@dataclass(frozen=True)
class Disaster:
    """A declared disaster as the store holds it."""

    disaster_id: str
    name: str
    kind: DisasterKind
    municipality_codes: tuple[str, ...]
    occurred_at: dt.datetime
    declared_at: dt.datetime
    closed_at: dt.datetime | None = None  # None while declared


def to_millisecond(instant: dt.datetime) -> dt.datetime:
    """The instant in UTC, cut to the millisecond (the precision of the events)."""
    utc = instant.astimezone(dt.UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def declaration(*, name: str, kind: str, municipality_codes: Iterable[str], occurred_at: dt.datetime,
                now: dt.datetime) -> Declaration:
    """The declaration staff asked for, or InvalidArgumentError naming the first value that is wrong."""
    clean_name = " ".join(name.split())
    if not clean_name:
        raise InvalidArgumentError("name", "the disaster needs a name (e.g. 令和8年紀伊半島沖地震)")
    if len(clean_name) > MAX_NAME_LENGTH:
        raise InvalidArgumentError("name", f"at most {MAX_NAME_LENGTH} characters, got {len(clean_name)}")
    try:
        hazard = DisasterKind(kind.strip().lower())
    except ValueError:
        raise InvalidArgumentError(
            "kind", f"{kind!r} is not a kind of disaster: {', '.join(DisasterKind)}") from None
    codes = sorted({code.strip() for code in municipality_codes})
    if not codes:
        raise InvalidArgumentError("municipality", "give at least one municipality code")
    for code in codes:
        if not is_known_municipality(code):
            raise InvalidArgumentError("municipality", f"{code!r} is not a known municipality code (6 digits with "
                                                       "check digit, e.g. 302066 for 田辺市)")
    occurred = to_millisecond(occurred_at)
    if occurred > now:
        raise InvalidArgumentError("occurred_at", "the disaster cannot have occurred in the future "
                                                  f"({format_instant(occurred)} is after now, {format_instant(now)})")
    return Declaration(clean_name, hazard, tuple(codes), occurred)


def closing_time(disaster: Disaster, at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When `disaster` may be closed, asked for `at`: not twice, not before it occurred, not in the future."""
    if disaster.closed_at is not None:
        raise DisasterClosedError(f"disaster {disaster.disaster_id} ({disaster.name}) was closed already, at "
                                  f"{format_instant(disaster.closed_at)}: closing is final")
    closed = to_millisecond(at)
    if closed > now:
        raise InvalidArgumentError("at", "a disaster cannot be closed in the future "
                                         f"({format_instant(closed)} is after now, {format_instant(now)})")
    if closed < disaster.occurred_at:
        raise InvalidArgumentError("at", f"{format_instant(closed)} is before the disaster occurred "
                                         f"({format_instant(disaster.occurred_at)})")
    return closed
