"""Damage assessment on the disaster store (sinks/damage_assessment.py), on a real SQLite file through the
composition root: surveys with their history and events, areas previewed and applied in one transaction, every
refusal leaving nothing behind. Most tests place dwellings at chosen coordinates in the ledger's tables
(tests.ledger_dwellings_factory); the last builds the ledger from a register backup at declaration."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point

import sinks.damage_assessment as damage_assessment
from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_area import parse_area
from domain.disasters import DisasterClosedError, declaration
from domain.dwelling_survey import AssessmentSource
from domain.errors import InvalidArgumentError
from domain.japan_time import JST
from infra import topics
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.damage_assessment import UnknownDwellingError
from sinks.disaster_ledger import LedgerBuild, NoLedgerError, surveyed_damage
from sinks.disaster_store import DisasterStore
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.ledger_dwellings_factory import Dwelling, add_dwellings
from tests.platforms import make_platform
from tests.sinks.history_factory import append_events

ONAGAWA, TANABE = "045811", "302066"
OCCURRED = dt.datetime(2026, 11, 20, 5, 46, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)
SERDE = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_ASSESSMENTS])

# Five dwellings of 女川町 in a row along 38.445 N, 0.01° apart from 141.44 E.
ROW = [Dwelling(f"D{i}", 141.44 + 0.01 * i, 38.445, households=1 + i % 2) for i in range(5)]
ZONE = {"type": "Polygon", "coordinates": [[[141.435, 38.44], [141.465, 38.44], [141.465, 38.45],
                                            [141.435, 38.45], [141.435, 38.44]]]}  # D0, D1, D2


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path / "var")


@pytest.fixture
def disaster_id(platform: Platform) -> str:
    declared = platform.disaster_store.declare(declaration(
        name="令和8年宮城県沖地震", kind="tsunami", municipality_codes=[ONAGAWA, TANABE], occurred_at=OCCURRED,
        now=NOW), NOW)
    add_dwellings(platform.settings.data_dir, declared.disaster_id, ONAGAWA, ROW)
    return declared.disaster_id


def events(platform: Platform) -> list[dict[str, Any]]:
    """The assessment events in the outbox, decoded, in order."""
    con = platform.disaster_store.connection
    rows = con.execute("SELECT value FROM outbox WHERE topic=? ORDER BY sequence", (topics.DISASTER_ASSESSMENTS,))
    return [SERDE.decode(bytes(v)) for (v,) in rows]


def state(platform: Platform) -> tuple[Any, ...]:
    """Everything the assessment writes: to compare before and after a refusal."""
    con = platform.disaster_store.connection
    assert platform.damage_assessment  # its tables exist from its start
    return tuple(con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                 for table in ("dwelling_surveys", "dwelling_survey_history", "disaster_areas", "outbox"))


def survey(platform: Platform, disaster_id: str, dwelling_id: str, **changes: Any) -> Any:
    values: dict[str, Any] = {"surveyor": "調査 太郎", "surveyed_on": dt.date(2026, 11, 24), "now": NOW} | changes
    if "level" not in values and "loss_ratio" not in values:
        values["loss_ratio"] = "0.45"
    return platform.damage_assessment.survey(disaster_id, dwelling_id, **values)


def test_a_survey_is_stored_with_its_history_and_one_event(platform: Platform, disaster_id: str) -> None:
    first = survey(platform, disaster_id, "D1", flood_depth="ABOVE_FLOOR")
    assert (first.level, first.source, first.loss_ratio, first.flood_depth, first.surveyed_by) == \
        (DamageLevel.DAIKIBO_HANKAI, AssessmentSource.SURVEY, "0.45", FloodDepth.ABOVE_FLOOR, "調査 太郎")
    later = NOW + dt.timedelta(days=1)
    second = survey(platform, disaster_id, "D1", level="ZENKAI", surveyor="再調査 花子", reason="内部調査の結果",
                    surveyed_on=None, now=later)
    assert (second.level, second.loss_ratio, second.surveyed_on) == (DamageLevel.ZENKAI, None, dt.date(2026, 11, 26))

    [one] = platform.damage_assessment.assessments(disaster_id)
    assert one == second
    history = list(platform.damage_assessment.history(disaster_id, "D1"))
    assert [(c.old_level, c.new_level, c.changed_by, c.recorded_at, c.reason) for c in history] == [
        (None, DamageLevel.DAIKIBO_HANKAI, "調査 太郎", NOW, None),
        (DamageLevel.DAIKIBO_HANKAI, DamageLevel.ZENKAI, "再調査 花子", later, "内部調査の結果")]

    announced = events(platform)
    assert [(e["source"], e["dwelling_ids"], e["level"], e["loss_ratio"], e["flood_depth"], e["surveyed_by"],
             e["reason"], e["part"], e["parts"]) for e in announced] == [
        ("SURVEY", ["D1"], "DAIKIBO_HANKAI", "0.45", "ABOVE_FLOOR", "調査 太郎", None, 1, 1),
        ("SURVEY", ["D1"], "ZENKAI", None, None, "再調査 花子", "内部調査の結果", 1, 1)]
    assert announced[0]["surveyed_on"] == dt.date(2026, 11, 24) and announced[0]["disaster_id"] == disaster_id
    # The outbox is shared with the disaster events: the declaration was 1.
    assert [e["sequence"] for e in announced] == [2, 3]


@pytest.mark.parametrize(("changes", "error", "words"), [
    ({"loss_ratio": "1.5"}, InvalidArgumentError, ("loss_ratio", "from 0 to 1")),
    ({"loss_ratio": "-0.01"}, InvalidArgumentError, ("loss_ratio",)),
    ({"level": "TOTAL"}, InvalidArgumentError, ("level", "unknown damage level 'TOTAL'")),
    ({"surveyed_on": dt.date(2026, 11, 19)}, InvalidArgumentError, ("date", "before the disaster")),
    ({"dwelling": "D9"}, UnknownDwellingError, ("no dwelling 'D9'",)),
    ({"reason": None, "again": True}, InvalidArgumentError, ("reason", "say why")),
])
def test_a_refused_survey_writes_nothing(platform: Platform, disaster_id: str, changes: dict[str, Any],
                                         error: type[Exception], words: tuple[str, ...]) -> None:
    if changes.pop("again", False):
        survey(platform, disaster_id, "D0")
    before = state(platform)
    with pytest.raises(error) as caught:
        survey(platform, disaster_id, changes.pop("dwelling", "D0"), **changes)
    assert all(w in str(caught.value) for w in words), caught.value
    assert state(platform) == before


def test_an_area_is_previewed_then_applied_keeping_the_surveyed_dwellings(platform: Platform,
                                                                           disaster_id: str) -> None:
    assessment = platform.damage_assessment
    survey(platform, disaster_id, "D1", loss_ratio="0.05")  # surveyed one by one: 一部損壊
    survey(platform, disaster_id, "D4", level="HANKAI")  # outside the zone
    zone = parse_area(json.dumps(ZONE))

    preview = assessment.preview_area(disaster_id, ONAGAWA, zone, DamageLevel.ZENKAI)
    assert (preview.dwellings, preview.households, preview.surveyed, preview.changes) == (3, 1 + 2 + 1, 1, 2)
    assert assessment.preview_area(disaster_id, ONAGAWA, zone, DamageLevel.ZENKAI, True).changes == 3
    before = state(platform)
    assert before == state(platform)  # previews write nothing

    applied = assessment.apply_area(disaster_id, ONAGAWA, zone, DamageLevel.ZENKAI, staff="防災課 次郎",
                                    reason="津波浸水区域", now=NOW)
    assert (applied.kept_surveyed, applied.changed_from, applied.events) == (1, {"none": 2}, 1)
    levels = {a.dwelling_id: (a.level, a.source) for a in assessment.assessments(disaster_id)}
    assert levels == {"D0": (DamageLevel.ZENKAI, AssessmentSource.AREA),
                      "D1": (DamageLevel.ICHIBU_SONKAI, AssessmentSource.SURVEY),
                      "D2": (DamageLevel.ZENKAI, AssessmentSource.AREA),
                      "D4": (DamageLevel.HANKAI, AssessmentSource.SURVEY)}
    [event] = events(platform)[2:]
    assert (event["source"], event["area_id"], sorted(event["dwelling_ids"]), event["level"], event["surveyed_by"],
            event["reason"]) == ("AREA", applied.area_id, ["D0", "D2"], "ZENKAI", "防災課 次郎", "津波浸水区域")

    # The same area again: nothing left to change. With overwrite: the surveyed D1 too, its history kept.
    again = assessment.apply_area(disaster_id, ONAGAWA, zone, DamageLevel.ZENKAI, staff="防災課 次郎", now=NOW)
    assert (again.preview.changes, again.events) == (0, 0)
    overwritten = assessment.apply_area(disaster_id, ONAGAWA, zone, DamageLevel.ZENKAI, staff="防災課 次郎",
                                        overwrite_surveyed=True, reason="全戸流失を確認", now=NOW)
    assert (overwritten.preview.changes, overwritten.kept_surveyed, overwritten.changed_from) == \
        (1, 0, {"ICHIBU_SONKAI": 1})
    d1 = [(c.old_level, c.new_level, c.source, c.area_id, c.reason) for c in assessment.history(disaster_id, "D1")]
    assert d1 == [(None, DamageLevel.ICHIBU_SONKAI, AssessmentSource.SURVEY, None, None),
                  (DamageLevel.ICHIBU_SONKAI, DamageLevel.ZENKAI, AssessmentSource.AREA, overwritten.area_id,
                   "全戸流失を確認")]
    areas = platform.disaster_store.connection.execute(
        "SELECT area_id, registered_by, changed, geojson FROM disaster_areas ORDER BY recorded_at, changed").fetchall()
    assert len(areas) == 3 and json.loads(areas[0][3])["type"] == "Polygon"


def test_a_big_area_is_announced_in_parts(platform: Platform, disaster_id: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(damage_assessment, "AREA_EVENT_DWELLINGS", 2)
    everything = {"type": "Polygon", "coordinates": [[[141.4, 38.4], [141.5, 38.4], [141.5, 38.5], [141.4, 38.5],
                                                      [141.4, 38.4]]]}
    applied = platform.damage_assessment.apply_area(disaster_id, ONAGAWA, parse_area(everything),
                                                    DamageLevel.JUN_HANKAI, staff="防災課", now=NOW)
    assert (applied.preview.dwellings, applied.events) == (5, 3)
    parts = events(platform)
    assert [(e["part"], e["parts"], len(e["dwelling_ids"])) for e in parts] == [(1, 3, 2), (2, 3, 2), (3, 3, 1)]
    assert sorted(i for e in parts for i in e["dwelling_ids"]) == [d.dwelling_id for d in ROW]


def test_a_refused_area_applies_nothing(platform: Platform, disaster_id: str) -> None:
    assessment = platform.damage_assessment
    survey(platform, disaster_id, "D0")
    before = state(platform)
    tanabe_square = parse_area(json.dumps({"type": "Polygon", "coordinates": [[[135.37, 33.72], [135.38, 33.72],
                                                                                [135.38, 33.73], [135.37, 33.72]]]}))
    with pytest.raises(InvalidArgumentError, match="outside municipality 045811"):
        assessment.apply_area(disaster_id, ONAGAWA, tanabe_square, DamageLevel.ZENKAI, staff="防災課", now=NOW)
    with pytest.raises(InvalidArgumentError, match="declared for 045811, 302066, not for 141046"):
        assessment.apply_area(disaster_id, "141046", parse_area(ZONE), DamageLevel.ZENKAI, staff="防災課", now=NOW)
    with pytest.raises(NoLedgerError, match="no dwelling of municipality 302066"):
        assessment.apply_area(disaster_id, TANABE, tanabe_square, DamageLevel.ZENKAI, staff="防災課", now=NOW)
    with pytest.raises(InvalidArgumentError, match="staff: must not be empty"):
        assessment.apply_area(disaster_id, ONAGAWA, parse_area(ZONE), DamageLevel.ZENKAI, staff=" ", now=NOW)
    assert state(platform) == before

    platform.disaster_store.close_disaster(disaster_id, None, NOW)
    before = state(platform)
    with pytest.raises(DisasterClosedError):
        assessment.apply_area(disaster_id, ONAGAWA, parse_area(ZONE), DamageLevel.ZENKAI, staff="防災課", now=NOW)
    with pytest.raises(DisasterClosedError):
        survey(platform, disaster_id, "D0", reason="再調査")
    assert state(platform) == before


def test_a_store_of_the_first_layout_opens_and_gains_the_assessment_tables(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    old = DisasterStore(path, AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_EVENTS]))
    declared = old.declare(declaration(name="令和8年豪雨", kind="flood", municipality_codes=[ONAGAWA],
                                       occurred_at=OCCURRED, now=NOW), NOW)
    old.close()
    store = DisasterStore(path, AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_EVENTS]))
    assessment = damage_assessment.DamageAssessment(store, SERDE)
    assert assessment.assessments(declared.disaster_id) == []
    with pytest.raises(UnknownDwellingError):  # no ledger built: no dwelling known
        assessment.survey(declared.disaster_id, "D0", surveyor="x", surveyed_on=None, now=NOW, level="HANKAI")


def test_an_area_over_a_ledger_built_from_the_backup(tmp_path: Path) -> None:
    """The real path: 女川町's register in the backup, its ledger built at declaration as of 発災日時
    (sinks.disaster_ledger), then a survey and an area over its real dwellings; the ledger then sees the
    dwellings surveyed 半壊 or worse as damaged."""
    start = dt.datetime(2026, 11, 1, tzinfo=JST)
    sim = RegisterSimulator(load_reference_data(), ONAGAWA, population=1500, seed=5, start=start,
                            font_path=load_settings().mincho_font)
    load = list(sim.full_load())
    platform = make_platform(tmp_path / "var")
    append_events(platform.snapshot_store, ONAGAWA, load, 1000)
    now = dt.datetime.now(dt.UTC)
    disaster, [build] = platform.disaster_ledger.declare(declaration(
        name="令和8年宮城県沖地震", kind="tsunami", municipality_codes=[ONAGAWA],
        occurred_at=load[-1]["event_time"] + dt.timedelta(hours=1), now=now), now)
    assert isinstance(build, LedgerBuild) and build.dwellings > 100

    con = platform.disaster_store.connection
    dwellings = con.execute("SELECT dwelling_id, longitude, latitude FROM ledger_dwellings WHERE disaster_id=?",
                            (disaster.disaster_id,)).fetchall()
    # The western half of the dwellings' extent, as staff would draw it.
    west, east = min(d[1] for d in dwellings), max(d[1] for d in dwellings)
    south, north = min(d[2] for d in dwellings), max(d[2] for d in dwellings)
    middle = (west + east) / 2
    zone = parse_area({"type": "Polygon", "coordinates": [[[west - 0.01, south - 0.01], [middle, south - 0.01],
                                                           [middle, north + 0.01], [west - 0.01, north + 0.01],
                                                           [west - 0.01, south - 0.01]]]})
    inside_ids = {d for d, lon, lat in dwellings if zone.covers(Point(lon, lat))}  # one by one: the ground truth
    households = {h for d, h in con.execute("SELECT dwelling_id, household_number FROM ledger_residents "
                                            "WHERE disaster_id=?", (disaster.disaster_id,)) if d in inside_ids}
    assert 0 < len(inside_ids) < len(dwellings)

    surveyed = sorted(inside_ids)[0]
    platform.damage_assessment.survey(disaster.disaster_id, surveyed, surveyor="調査 太郎", surveyed_on=None,
                                      now=now, level="ICHIBU_SONKAI")
    preview = platform.damage_assessment.preview_area(disaster.disaster_id, ONAGAWA, zone, DamageLevel.HANKAI)
    assert (preview.dwellings, preview.households, preview.surveyed, preview.changes) == \
        (len(inside_ids), len(households), 1, len(inside_ids) - 1)
    platform.damage_assessment.apply_area(disaster.disaster_id, ONAGAWA, zone, DamageLevel.HANKAI, staff="防災課",
                                          now=now)
    assert surveyed_damage(con, disaster.disaster_id) == inside_ids - {surveyed}
