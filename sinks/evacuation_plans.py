"""The 個別避難計画 of listed people (docs/domain.md §6.5), in the disaster store's file beside the roster: one
current plan per person (table `roster_plans`), each change one transaction keeping who changed it and when, the
earlier versions kept in `roster_plan_history`. The checks are domain.evacuation_plan's; only a person on the list
(sinks.evacuation_roster) has a plan. Every read is audited."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from domain.evacuation_plan import EvacuationPlan, Supporter, shipped_shelter
from sinks.audit import record_access
from sinks.evacuation_roster import EvacuationRoster

_TABLES = """
    CREATE TABLE IF NOT EXISTS roster_plans (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, plan TEXT NOT NULL, updated_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL, PRIMARY KEY (municipality_code, resident_code)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS roster_plan_history (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, plan TEXT NOT NULL, updated_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class StoredPlan:
    plan: EvacuationPlan
    updated_by: str
    updated_at: dt.datetime


def _text(plan: EvacuationPlan) -> str:
    return json.dumps({"supporters": [asdict(s) for s in plan.supporters], "shelter_id": plan.shelter.shelter_id,
                       "route": plan.route, "needs": plan.needs}, ensure_ascii=False)


class EvacuationPlans:
    def __init__(self, roster: EvacuationRoster) -> None:
        self._roster = roster
        self._store = roster.store
        self._con = roster.store.connection
        self._audit_file = roster.audit_file
        with self._store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    def set_plan(self, municipality_code: str, resident_code: str, plan: EvacuationPlan, *, by: str,
                 now: dt.datetime) -> None:
        """Store the person's plan (they must be listed), keeping the one it replaces in the history."""
        row = (municipality_code, resident_code, _text(plan), by, int(now.timestamp() * 1000))
        with self._store.transaction():
            self._roster.require_listed(municipality_code, resident_code)
            self._con.execute("INSERT INTO roster_plan_history SELECT * FROM roster_plans WHERE municipality_code=? "
                              "AND resident_code=?", (municipality_code, resident_code))
            self._con.execute("INSERT OR REPLACE INTO roster_plans VALUES (?, ?, ?, ?, ?)", row)

    def plan(self, municipality_code: str, resident_code: str, *, actor: str | None = None) -> StoredPlan | None:
        """The person's current plan, or None. Audited."""
        self._roster.require_listed(municipality_code, resident_code)
        found = self._con.execute("SELECT plan, updated_by, updated_at FROM roster_plans WHERE municipality_code=? "
                                  "AND resident_code=?", (municipality_code, resident_code)).fetchone()
        record_access(self._audit_file, "roster.plan", municipality_code, 0 if found is None else 1, actor=actor,
                      resident_code=resident_code)
        if found is None:
            return None
        values = json.loads(found[0])
        plan = EvacuationPlan(tuple(Supporter(**s) for s in values["supporters"]),
                              shipped_shelter(municipality_code, values["shelter_id"]), values["route"],
                              values["needs"])
        return StoredPlan(plan, found[1], dt.datetime.fromtimestamp(found[2] / 1000, dt.UTC))
