"""The register-derived part of the 被災者台帳 (docs/domain.md §6.1): what the register says of a person since the
disaster occurred, from their record at 発災日時 (the base) and the latest record of the register.

The ledger state of a person is a pure function of the base, the latest record, the disaster window and the set
of damaged dwellings, so that applying the same record twice, or replaying the register stream, changes
nothing. Staff-entered items are not part of it: register updates never touch them.

- No base (not a resident at 発災日時) and a current record: a move-in (or a birth) after the disaster,
  ARRIVED_AFTER. No base and a deleted record: not in the ledger (arrived after and left again).
- Deleted by death: DIED; CONDOLENCE_REVIEW too when the date of death lies in the disaster window (queued
  for the 災害弔慰金 review).
- Deleted by a move-out (転出, 国外転出): MOVED_OUT, with the address the register holds after it as the new
  address when it differs from the base address.
- REVIEW (a possible double claim) with its reasons: HOUSEHOLD_SPLIT when the person's household number is no
  longer the one at 発災日時 (世帯分離, 世帯変更); MOVED_FROM_DAMAGED when the person's dwelling at 発災日時 is
  damaged (半壊 or worse, i.e. `damaged_dwellings`) and they no longer live there (moved within or out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.damage_levels import DamageLevel
from domain.dwellings import address_text, dwelling_id
from domain.japan_time import japan_date

# A dwelling counts as damaged for the review of moves from 半壊 up (全壊, 大規模半壊, 中規模半壊, 半壊): the levels
# that give a 罹災証明書 a right to the support of §6.4.
DAMAGED_FROM = DamageLevel.HANKAI

MOVE_OUT_REASONS = frozenset({"MOVE_OUT", "EMIGRATION"})


class LedgerFlag(StrEnum):
    ARRIVED_AFTER = "ARRIVED_AFTER"  # not in the register at 発災日時
    DIED = "DIED"
    CONDOLENCE_REVIEW = "CONDOLENCE_REVIEW"  # died inside the disaster window: queued for the 災害弔慰金 review
    MOVED_OUT = "MOVED_OUT"
    REVIEW = "REVIEW"  # see ReviewReason


class ReviewReason(StrEnum):
    HOUSEHOLD_SPLIT = "HOUSEHOLD_SPLIT"
    MOVED_FROM_DAMAGED = "MOVED_FROM_DAMAGED"


def is_damaged(level: DamageLevel) -> bool:
    """Whether a dwelling of this level counts as damaged for MOVED_FROM_DAMAGED."""
    return level.severity >= DAMAGED_FROM.severity


@dataclass(frozen=True)
class RegisterFacts:
    """What the rules read of one register record (a decoded Resident)."""

    status: str  # CURRENT or DELETED
    deletion_reason: str | None
    deleted_on: dt.date | None
    address: str
    dwelling_id: str
    household_number: str


def register_facts(resident: Mapping[str, Any]) -> RegisterFacts:
    return RegisterFacts(resident["status"], resident.get("deletion_reason"), resident.get("deleted_on"),
                         address_text(resident["address"]),
                         dwelling_id(resident["municipality_code"], resident["address"]),
                         resident["household_number"])


@dataclass(frozen=True)
class DisasterWindow:
    """The days a death counts as inside the disaster: from the day it occurred (Japan time) to the day it was
    closed, both included, open-ended while it is declared. Days, because the register records the date of a
    death, not its time; staff review every queued death anyway."""

    first_day: dt.date
    last_day: dt.date | None

    def holds(self, day: dt.date) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)


def disaster_window(occurred_at: dt.datetime, closed_at: dt.datetime | None) -> DisasterWindow:
    return DisasterWindow(japan_date(occurred_at), None if closed_at is None else japan_date(closed_at))


@dataclass(frozen=True)
class LedgerState:
    """The register-derived part of a ledger row."""

    status: str
    deletion_reason: str | None
    deleted_on: dt.date | None
    address: str
    dwelling_id: str
    household_number: str
    flags: tuple[LedgerFlag, ...]  # in the order of LedgerFlag
    review_reasons: tuple[ReviewReason, ...]  # in the order of ReviewReason
    moved_to: str | None  # MOVED_OUT: the address the register gives after the move-out, when it differs


def ledger_state(base: RegisterFacts | None, latest: RegisterFacts, window: DisasterWindow,
                 damaged_dwellings: Set[str]) -> LedgerState | None:
    """The person's ledger state, or None when they do not belong in the ledger."""
    current = latest.status == "CURRENT"
    if base is None and not current:
        return None
    flags: set[LedgerFlag] = set()
    reasons: set[ReviewReason] = set()
    moved_out = not current and latest.deletion_reason in MOVE_OUT_REASONS
    if base is None:
        flags.add(LedgerFlag.ARRIVED_AFTER)
    if not current and latest.deletion_reason == "DEATH":
        flags.add(LedgerFlag.DIED)
        if latest.deleted_on is not None and window.holds(latest.deleted_on):
            flags.add(LedgerFlag.CONDOLENCE_REVIEW)
    if moved_out:
        flags.add(LedgerFlag.MOVED_OUT)
    if base is not None:
        if current and latest.household_number != base.household_number:
            reasons.add(ReviewReason.HOUSEHOLD_SPLIT)
        left = moved_out or (current and latest.dwelling_id != base.dwelling_id)
        if left and base.dwelling_id in damaged_dwellings:
            reasons.add(ReviewReason.MOVED_FROM_DAMAGED)
    if reasons:
        flags.add(LedgerFlag.REVIEW)
    moved_to = latest.address if moved_out and base is not None and latest.address != base.address else None
    return LedgerState(
        latest.status, latest.deletion_reason, latest.deleted_on, latest.address, latest.dwelling_id,
        latest.household_number, tuple(f for f in LedgerFlag if f in flags),
        tuple(r for r in ReviewReason if r in reasons), moved_to)
