"""A damage survey of one dwelling (住家被害認定調査, docs/domain.md §6.2): what a surveyor records, checked before
anything is stored.

A survey gives the dwelling's level either as its loss ratio (損害割合, the level follows from it:
domain.damage_levels) or as the level itself (a surveyor who judged it from the outside, 外観目視), never both;
who surveyed it, on which day (in Japan, not before the disaster occurred, not in the future), optionally the
flood depth (床上/床下浸水) and, when the dwelling already has a level, why it is surveyed again (再調査): every
change of a level keeps who, when and why, and a re-survey without a reason would leave the "why" empty.

A level set for a whole area (domain.disaster_area) is the other source of a dwelling's level; a dwelling
surveyed one by one keeps its survey when an area is registered over it unless staff choose to overwrite.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.damage_levels import (
    DamageLevel,
    FloodDepth,
    LossRatio,
    damage_level,
    flood_depth,
    level_for,
    read_loss_ratio,
)
from domain.errors import InvalidArgumentError
from domain.japan_time import japan_date

# Names and reasons are read on pages and in the history: one line each, of a bounded length.
MAX_SURVEYOR_LENGTH = 100
MAX_REASON_LENGTH = 500


class AssessmentSource(StrEnum):
    """Where a dwelling's current level came from."""

    SURVEY = "SURVEY"  # a survey of this dwelling (bcl disaster survey)
    AREA = "AREA"  # a level set for every dwelling inside an area (bcl disaster area)


@dataclass(frozen=True)
class SurveyResult:
    """A checked survey, not yet stored. `loss_ratio` is the decimal as written when the level came from it."""

    level: DamageLevel
    loss_ratio: Decimal | None
    surveyor: str
    surveyed_on: dt.date
    flood_depth: FloodDepth | None
    reason: str | None


def one_line(value: str, argument: str, limit: int) -> str:
    """A name or reason as one line: runs of white space become one space; not empty, at most `limit` long."""
    text = " ".join(value.split())
    if not text:
        raise InvalidArgumentError(argument, "must not be empty")
    if len(text) > limit:
        raise InvalidArgumentError(argument, f"must be at most {limit} characters, got {len(text)}")
    return text


def survey_result(*, loss_ratio: LossRatio | None = None, level: str | DamageLevel | None = None, surveyor: str,
                  surveyed_on: dt.date, occurred_at: dt.datetime, now: dt.datetime,
                  flood_depth_code: str | None = None, reason: str | None = None,
                  previous_level: DamageLevel | None = None) -> SurveyResult:
    """The survey of a dwelling as staff entered it, checked (each refusal names its field). `occurred_at` is the
    disaster's 発災日時; `previous_level` the dwelling's current level, if it has one (then a reason is needed)."""
    if (loss_ratio is None) == (level is None):
        raise InvalidArgumentError("loss_ratio", "give either the loss ratio or the level (--level), one of them")
    ratio = None if loss_ratio is None else read_loss_ratio(loss_ratio)
    decided = level_for(ratio) if ratio is not None else \
        level if isinstance(level, DamageLevel) else damage_level(str(level), "level")
    name = one_line(surveyor, "surveyor", MAX_SURVEYOR_LENGTH)
    if surveyed_on > japan_date(now):
        raise InvalidArgumentError("date", f"the survey date {surveyed_on.isoformat()} is in the future")
    if surveyed_on < japan_date(occurred_at):
        raise InvalidArgumentError("date", f"the survey date {surveyed_on.isoformat()} is before the disaster "
                                           f"occurred ({japan_date(occurred_at).isoformat()})")
    depth = None if flood_depth_code is None else flood_depth(flood_depth_code)
    why = _reason(reason)
    if previous_level is not None and why is None:
        raise InvalidArgumentError("reason", f"the dwelling is assessed already ({previous_level.value}): "
                                             "say why it is surveyed again")
    return SurveyResult(decided, ratio, name, surveyed_on, depth, why)


def area_entry(*, level: DamageLevel, staff: str, now: dt.datetime, reason: str | None = None) -> SurveyResult:
    """What a level set for an area records for each dwelling it changes: the staff member who registered the
    area (checked like a surveyor), the day (today, Japan), and why, if given. No loss ratio, no flood depth."""
    return SurveyResult(level, None, one_line(staff, "staff", MAX_SURVEYOR_LENGTH), japan_date(now), None,
                        _reason(reason))


def _reason(reason: str | None) -> str | None:
    return None if reason is None or not reason.strip() else one_line(reason, "reason", MAX_REASON_LENGTH)
