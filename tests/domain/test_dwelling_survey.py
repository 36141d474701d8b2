"""A survey of one dwelling (domain/dwelling_survey.py): the level from the loss ratio or given, each refusal
naming its field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from domain.damage_levels import DamageLevel, FloodDepth
from domain.dwelling_survey import survey_result
from domain.errors import InvalidArgumentError

OCCURRED = dt.datetime(2026, 11, 20, 5, 46, tzinfo=dt.UTC)  # 14:46 Japan time
NOW = dt.datetime(2026, 11, 25, 0, 30, tzinfo=dt.UTC)  # 09:30 Japan time, 25 November


def survey(**changes: Any) -> Any:
    values: dict[str, Any] = {"loss_ratio": "0.45", "surveyor": " 調査  太郎 ", "surveyed_on": dt.date(2026, 11, 24),
                              "occurred_at": OCCURRED, "now": NOW} | changes
    return survey_result(**values)


def refused(field: str, *words: str, **changes: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        survey(**changes)
    assert caught.value.argument == field, caught.value
    assert all(w in caught.value.reason for w in words), caught.value.reason


def test_the_level_follows_the_loss_ratio_or_is_given() -> None:
    result = survey(flood_depth_code="床上")
    assert (result.level, result.loss_ratio, result.surveyor, result.flood_depth, result.reason) == \
        (DamageLevel.DAIKIBO_HANKAI, Decimal("0.45"), "調査 太郎", FloodDepth.ABOVE_FLOOR, None)
    given = survey(loss_ratio=None, level="zenkai", reason="  外観目視  ")
    assert (given.level, given.loss_ratio, given.reason) == (DamageLevel.ZENKAI, None, "外観目視")
    # Surveyed the day it occurred (Japan time), or today.
    assert survey(surveyed_on=dt.date(2026, 11, 20)).surveyed_on == dt.date(2026, 11, 20)
    assert survey(surveyed_on=dt.date(2026, 11, 25)).surveyed_on == dt.date(2026, 11, 25)


def test_each_bad_field_is_refused_by_name() -> None:
    refused("loss_ratio", "from 0 to 1", loss_ratio="1.2")
    refused("loss_ratio", "from 0 to 1", loss_ratio="-0.1")
    refused("loss_ratio", "either the loss ratio or the level", level="ZENKAI")
    refused("loss_ratio", "either the loss ratio or the level", loss_ratio=None)
    refused("level", "unknown damage level 'TOTAL'", loss_ratio=None, level="TOTAL")
    refused("surveyor", "must not be empty", surveyor="  ")
    refused("surveyor", "at most 100", surveyor="あ" * 101)
    refused("date", "in the future", surveyed_on=dt.date(2026, 11, 26))
    refused("date", "before the disaster occurred (2026-11-20)", surveyed_on=dt.date(2026, 11, 19))
    refused("flood_depth", "unknown flood depth", flood_depth_code="knee")
    refused("reason", "at most 500", reason="x" * 501)


def test_a_re_survey_needs_a_reason() -> None:
    refused("reason", "assessed already (HANKAI)", "say why", previous_level=DamageLevel.HANKAI)
    refused("reason", "say why", previous_level=DamageLevel.HANKAI, reason="   ")
    assert survey(previous_level=DamageLevel.HANKAI, reason="再調査の申請").reason == "再調査の申請"
