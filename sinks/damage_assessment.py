"""Damage assessment of the dwellings of a disaster's ledgers (docs/domain.md §6.2), on the disaster store's
database (sinks.disaster_store): the current level of each dwelling and the history of every change.

- `dwelling_surveys`: one row per (disaster_id, dwelling_id), the dwelling's current level and where it came
  from (SURVEY: a survey of the dwelling; AREA: a level set for an area), with who entered it, the day and why.
- `dwelling_survey_history`: one row per change of a level: the old level (null the first time), the new one,
  who, when (the survey day and the instant stored), why, and the source (and area) of the change.
- `disaster_areas`: each area registration applied, with its polygon (GeoJSON), so that an AREA change in the
  history names the area it came from.

Each survey is one transaction writing the current row, its history row and one outbox event
(DwellingAssessment on bcl.disaster.assessments, published by the disaster relay); it is acknowledged once
committed. An area registration is also one transaction, however many dwellings it changes: the current rows and
the history of every changed dwelling, the area, and its events, one per part of at most AREA_EVENT_DWELLINGS
changed dwellings. Not one event per dwelling: 100,000 events of a big zone would be 100,000 outbox rows and
messages carrying the same level, area and staff member, and the embedded cluster keeps only 5 MiB per
partition (the events of a disaster share one partition, keyed by disaster id); not one event for the whole
area: with 100,000 dwelling ids it could exceed the brokers' 1 MB message limit. A refusal (bad area, unknown
disaster, municipality or dwelling) raises before anything is written, and a crash inside the transaction
leaves nothing of it: SQLite rolls back a transaction that was not committed.

The dwellings and their households are read from the ledger (`ledger_dwellings`, `ledger_residents`, built at
declaration by sinks.disaster_ledger): a dwelling is known only if the ledger has it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_area import check_in_municipality, inside, municipality_extent
from domain.disasters import Disaster, DisasterClosedError, to_millisecond
from domain.dwelling_survey import AssessmentSource, SurveyResult, area_entry, survey_result
from domain.errors import BclError, InvalidArgumentError
from domain.japan_time import japan_date
from infra import topics
from infra.crash_points import crash_point
from schemas.wire import AvroSerde
from sinks.disaster_ledger import NoLedgerError
from sinks.disaster_store import DisasterStore

# The most dwellings one DwellingAssessment event of an area lists (ids of tens of characters: a few hundred KB).
AREA_EVENT_DWELLINGS = 10_000

_TABLES = """
    CREATE TABLE IF NOT EXISTS dwelling_surveys (
        disaster_id TEXT NOT NULL, dwelling_id TEXT NOT NULL, municipality_code TEXT NOT NULL, level TEXT NOT NULL,
        source TEXT NOT NULL, loss_ratio TEXT, flood_depth TEXT, surveyed_by TEXT NOT NULL, surveyed_on TEXT NOT NULL,
        reason TEXT, area_id TEXT, recorded_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, dwelling_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS dwelling_survey_history (
        change INTEGER PRIMARY KEY, disaster_id TEXT NOT NULL, dwelling_id TEXT NOT NULL, old_level TEXT,
        new_level TEXT NOT NULL, source TEXT NOT NULL, loss_ratio TEXT, flood_depth TEXT, changed_by TEXT NOT NULL,
        surveyed_on TEXT NOT NULL, reason TEXT, area_id TEXT, recorded_at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS dwelling_survey_history_of ON dwelling_survey_history (disaster_id, dwelling_id);
    CREATE TABLE IF NOT EXISTS disaster_areas (
        area_id TEXT PRIMARY KEY, disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, level TEXT NOT NULL,
        geojson TEXT NOT NULL, overwrite_surveyed INTEGER NOT NULL, registered_by TEXT NOT NULL, reason TEXT,
        dwellings_inside INTEGER NOT NULL, changed INTEGER NOT NULL, recorded_at INTEGER NOT NULL);
"""


class UnknownDwellingError(BclError, LookupError):
    """The disaster's ledger has no dwelling of that id."""


@dataclass(frozen=True)
class Assessment:
    """A dwelling's current level."""

    disaster_id: str
    dwelling_id: str
    municipality_code: str
    level: DamageLevel
    source: AssessmentSource
    loss_ratio: str | None
    flood_depth: FloodDepth | None
    surveyed_by: str
    surveyed_on: dt.date
    reason: str | None
    area_id: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class Change:
    """One row of the history: a dwelling's level changed from `old_level` to `new_level`."""

    dwelling_id: str
    old_level: DamageLevel | None
    new_level: DamageLevel
    source: AssessmentSource
    loss_ratio: str | None
    flood_depth: FloodDepth | None
    changed_by: str
    surveyed_on: dt.date
    reason: str | None
    area_id: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class AreaPreview:
    """What an area registration touches: the dwellings and households inside, the dwellings surveyed one by one
    among them (kept unless overwriting), and how many would change level."""

    disaster_id: str
    municipality_code: str
    level: DamageLevel
    overwrite_surveyed: bool
    dwellings: int
    households: int
    surveyed: int
    changes: int


@dataclass(frozen=True)
class AreaRegistration:
    """An applied area registration: the preview as it stood in the transaction, and what changed."""

    area_id: str
    preview: AreaPreview
    kept_surveyed: int  # surveyed dwellings inside that kept their survey (0 when overwriting)
    changed_from: dict[str, int]  # previous level ("none" for a dwelling without one) → how many changed
    events: int


@dataclass(frozen=True)
class _Plan:
    preview: AreaPreview
    changes: list[tuple[str, DamageLevel | None]]  # (dwelling_id, previous level) of each dwelling to change


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _level(code: str | None) -> DamageLevel | None:
    return None if code is None else DamageLevel(code)


class DamageAssessment:
    def __init__(self, store: DisasterStore, serde: AvroSerde, topic: str = topics.DISASTER_ASSESSMENTS) -> None:
        self._store = store
        self._serde = serde
        self.topic = topic
        self._con = store.connection
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- a survey --------------------------------------------------------------------------------

    def survey(self, disaster_id: str, dwelling_id: str, *, surveyor: str, surveyed_on: dt.date | None,
               now: dt.datetime, loss_ratio: str | None = None, level: str | None = None,
               flood_depth: str | None = None, reason: str | None = None) -> Assessment:
        """Store a survey of one dwelling, its history row and its event, in one transaction (checked inside it,
        against the dwelling's level as it stands). Durable when this returns."""
        with self._store.transaction():
            disaster = self._open_disaster(disaster_id)
            row = self._con.execute("SELECT municipality_code FROM ledger_dwellings WHERE disaster_id=? "
                                    "AND dwelling_id=?", (disaster_id, dwelling_id)).fetchone() \
                if self._has_ledger() else None
            if row is None:
                raise UnknownDwellingError(f"the ledger of disaster {disaster_id} has no dwelling {dwelling_id!r}")
            (municipality_code,) = row
            previous = self._current_level(disaster_id, dwelling_id)
            result = survey_result(loss_ratio=loss_ratio, level=level, surveyor=surveyor,
                                   surveyed_on=japan_date(now) if surveyed_on is None else surveyed_on,
                                   occurred_at=disaster.occurred_at, now=now, flood_depth_code=flood_depth,
                                   reason=reason, previous_level=previous)
            self._write(disaster_id, municipality_code, [(dwelling_id, previous)], result, AssessmentSource.SURVEY,
                        None, now)
            self._announce(disaster_id, municipality_code, [dwelling_id], result, AssessmentSource.SURVEY, None,
                           now)
        current = self.assessments(disaster_id, dwelling_id)
        return current[0]

    # -- an area ---------------------------------------------------------------------------------

    def preview_area(self, disaster_id: str, municipality_code: str, area: BaseGeometry, level: DamageLevel,
                     overwrite_surveyed: bool = False) -> AreaPreview:
        """How many dwellings and households the area touches, and how many would change; writes nothing."""
        return self._plan(self._store.disaster(disaster_id), municipality_code, area, level, overwrite_surveyed).preview

    def apply_area(self, disaster_id: str, municipality_code: str, area: BaseGeometry, level: DamageLevel, *,
                   staff: str, now: dt.datetime, overwrite_surveyed: bool = False,
                   reason: str | None = None) -> AreaRegistration:
        """Set `level` for every dwelling inside the area, in one transaction (see the module doc)."""
        result = area_entry(level=level, staff=staff, now=now, reason=reason)
        area_id = str(uuid.uuid4())
        with self._store.transaction():
            plan = self._plan(self._open_disaster(disaster_id), municipality_code, area, level, overwrite_surveyed)
            self._write(disaster_id, municipality_code, plan.changes, result, AssessmentSource.AREA, area_id, now)
            crash_point("damage_assessment.mid_area")
            self._con.execute("INSERT INTO disaster_areas VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (area_id, disaster_id, municipality_code, level.value, shapely.to_geojson(area),
                               int(overwrite_surveyed), result.surveyor, result.reason, plan.preview.dwellings,
                               len(plan.changes), _ms(now)))
            ids = [dwelling_id for dwelling_id, _ in plan.changes]
            parts = [ids[i:i + AREA_EVENT_DWELLINGS] for i in range(0, len(ids), AREA_EVENT_DWELLINGS)]
            for number, part in enumerate(parts, 1):
                self._announce(disaster_id, municipality_code, part, result, AssessmentSource.AREA, area_id, now,
                               part=number, parts=len(parts))
        changed_from = Counter("none" if old is None else old.value for _, old in plan.changes)
        kept = 0 if overwrite_surveyed else plan.preview.surveyed
        return AreaRegistration(area_id, plan.preview, kept, dict(sorted(changed_from.items())), len(parts))

    def _plan(self, disaster: Disaster, municipality_code: str, area: BaseGeometry, level: DamageLevel,
              overwrite: bool) -> _Plan:
        if municipality_code not in disaster.municipality_codes:
            raise InvalidArgumentError("municipality", f"disaster {disaster.disaster_id} is declared for "
                                                       f"{', '.join(disaster.municipality_codes)}, not for "
                                                       f"{municipality_code}")
        ids, lons, lats = self._dwellings(disaster.disaster_id, municipality_code)
        check_in_municipality(area, municipality_extent(municipality_code, lons, lats), municipality_code)
        selected = ids[inside(area, lons, lats)]
        current = {dwelling_id: (DamageLevel(code), AssessmentSource(source)) for dwelling_id, code, source in
                   self._con.execute("SELECT dwelling_id, level, source FROM dwelling_surveys WHERE disaster_id=? "
                                     "AND municipality_code=?", (disaster.disaster_id, municipality_code))}
        chosen = set(selected.tolist())
        # The households of the residents registered in the dwellings at 発災日時, read as pairs (a range of the primary
        # key): for 100,000 dwellings a GROUP BY with count(DISTINCT) in SQLite costs twice as much.
        households = {household for dwelling_id, household in self._con.execute(
            "SELECT dwelling_id, household_number FROM ledger_residents WHERE disaster_id=? AND municipality_code=? "
            "AND household_number IS NOT NULL", (disaster.disaster_id, municipality_code)) if dwelling_id in chosen}
        changes: list[tuple[str, DamageLevel | None]] = []
        surveyed = 0
        for dwelling_id in selected.tolist():
            old = current.get(dwelling_id)
            if old is not None and old[1] is AssessmentSource.SURVEY:
                surveyed += 1
                if not overwrite:
                    continue
            if old is None or old[0] is not level:
                changes.append((dwelling_id, None if old is None else old[0]))
        preview = AreaPreview(disaster.disaster_id, municipality_code, level, overwrite, len(selected),
                              len(households), surveyed, len(changes))
        return _Plan(preview, changes)

    def _dwellings(self, disaster_id: str, municipality_code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ids and coordinates of the municipality's dwellings in the disaster's ledger."""
        rows = self._con.execute(
            "SELECT dwelling_id, longitude, latitude FROM ledger_dwellings WHERE disaster_id=? AND municipality_code=?",
            (disaster_id, municipality_code)).fetchall() if self._has_ledger() else []
        if not rows:
            raise NoLedgerError(f"the ledger of disaster {disaster_id} has no dwelling of municipality "
                                f"{municipality_code} (is it built? `bcl disaster import-csv` for pattern B)")
        ids, lons, lats = zip(*rows, strict=True)
        return np.asarray(ids, dtype=object), np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, disaster_id: str, municipality_code: str, changes: list[tuple[str, DamageLevel | None]],
               result: SurveyResult, source: AssessmentSource, area_id: str | None, now: dt.datetime) -> None:
        """The current rows and the history rows of `changes` (dwelling_id, previous level), in the caller's
        transaction."""
        ratio = None if result.loss_ratio is None else str(result.loss_ratio)
        depth = None if result.flood_depth is None else result.flood_depth.value
        day, at = result.surveyed_on.isoformat(), _ms(now)
        self._con.executemany(
            "INSERT INTO dwelling_surveys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (disaster_id, dwelling_id) DO UPDATE SET level=excluded.level, source=excluded.source, "
            "loss_ratio=excluded.loss_ratio, flood_depth=excluded.flood_depth, surveyed_by=excluded.surveyed_by, "
            "surveyed_on=excluded.surveyed_on, reason=excluded.reason, area_id=excluded.area_id, "
            "recorded_at=excluded.recorded_at",
            [(disaster_id, dwelling_id, municipality_code, result.level.value, source.value, ratio, depth,
              result.surveyor, day, result.reason, area_id, at) for dwelling_id, _ in changes])
        self._con.executemany(
            "INSERT INTO dwelling_survey_history (disaster_id, dwelling_id, old_level, new_level, source, loss_ratio, "
            "flood_depth, changed_by, surveyed_on, reason, area_id, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(disaster_id, dwelling_id, None if old is None else old.value, result.level.value, source.value, ratio,
              depth, result.surveyor, day, result.reason, area_id, at) for dwelling_id, old in changes])

    def _announce(self, disaster_id: str, municipality_code: str, dwelling_ids: list[str], result: SurveyResult,
                  source: AssessmentSource, area_id: str | None, now: dt.datetime, part: int = 1,
                  parts: int = 1) -> None:
        record: dict[str, Any] = {
            "disaster_id": disaster_id, "municipality_code": municipality_code, "source": source.value,
            "area_id": area_id, "part": part, "parts": parts, "dwelling_ids": dwelling_ids,
            "level": result.level.value, "loss_ratio": None if result.loss_ratio is None else str(result.loss_ratio),
            "flood_depth": None if result.flood_depth is None else result.flood_depth.value,
            "surveyed_by": result.surveyor, "surveyed_on": result.surveyed_on, "reason": result.reason,
            "recorded_at": to_millisecond(now),
        }
        self._store.append_outbox(self.topic, disaster_id.encode(), self._serde, record, now)

    # -- reading ---------------------------------------------------------------------------------

    def assessments(self, disaster_id: str, dwelling_id: str | None = None) -> list[Assessment]:
        """The current level of every assessed dwelling of the disaster (or of one), by dwelling id."""
        self._store.disaster(disaster_id)
        rows = self._con.execute(
            "SELECT dwelling_id, municipality_code, level, source, loss_ratio, flood_depth, surveyed_by, surveyed_on, "
            "reason, area_id, recorded_at FROM dwelling_surveys WHERE disaster_id=?1 "
            "AND (?2 IS NULL OR dwelling_id=?2) ORDER BY dwelling_id", (disaster_id, dwelling_id))
        return [Assessment(disaster_id, d, m, DamageLevel(lv), AssessmentSource(s), r,
                           None if f is None else FloodDepth(f), by, dt.date.fromisoformat(on), why, a, _instant(at))
                for d, m, lv, s, r, f, by, on, why, a, at in rows]

    def history(self, disaster_id: str, dwelling_id: str | None = None) -> Iterator[Change]:
        """Every change of the disaster's dwellings (or of one), in the order made."""
        self._store.disaster(disaster_id)
        rows = self._con.execute(
            "SELECT dwelling_id, old_level, new_level, source, loss_ratio, flood_depth, changed_by, surveyed_on, "
            "reason, area_id, recorded_at FROM dwelling_survey_history WHERE disaster_id=?1 "
            "AND (?2 IS NULL OR dwelling_id=?2) ORDER BY change", (disaster_id, dwelling_id))
        for d, old, new, s, r, f, by, on, why, a, at in rows:
            yield Change(d, _level(old), DamageLevel(new), AssessmentSource(s), r,
                         None if f is None else FloodDepth(f), by, dt.date.fromisoformat(on), why, a, _instant(at))

    # -- helpers ---------------------------------------------------------------------------------

    def _open_disaster(self, disaster_id: str) -> Disaster:
        disaster = self._store.disaster(disaster_id)
        if disaster.closed_at is not None:
            raise DisasterClosedError(f"disaster {disaster_id} was closed: its damage assessment is final")
        return disaster

    def _current_level(self, disaster_id: str, dwelling_id: str) -> DamageLevel | None:
        row = self._con.execute("SELECT level FROM dwelling_surveys WHERE disaster_id=? AND dwelling_id=?",
                                (disaster_id, dwelling_id)).fetchone()
        return None if row is None else DamageLevel(row[0])

    def _has_ledger(self) -> bool:
        """Whether the ledger tables exist (a store of a platform whose ledgers were never built has none)."""
        return self._con.execute("SELECT 1 FROM sqlite_master WHERE type='view' AND name='ledger_dwellings'"
                                 ).fetchone() is not None
