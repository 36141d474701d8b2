"""A household's facts in a disaster, read from the disaster store for the certificate worker's 罹災証明書 and
被災証明書 (docs/domain.md §6.3).

The disaster store (sinks.disaster_store) is the durable source of truth: its ledger (sinks.disaster_ledger), its
surveys (sinks.damage_assessment) and its applications (sinks.disaster_applications) are read where they are, on
demand, rather than published to Kafka (a declaration builds up to a million ledger rows, and the worker needs a
few). One indexed query per request: the requester's ledger row by (disaster, municipality, resident code) — its
primary key —, its dwelling and the dwelling's current survey by their primary keys, and whether the household
has an accepted 被災証明書 application (by disaster and household number). A request only ever reads rows of its
own municipality: every table is matched on the requester's municipality code.

Read-only (`mode=ro`): the worker never writes the staff's store, and in WAL mode its reads never block the
writers nor wait for them. A store without a ledger yet (no file, or no tables) holds no household.

What "reported damage" is for a 被災証明書: the household's accepted online application for one
(Procedure.HISAI_CERTIFICATE, status ACCEPTED): staff accepted that the household was affected. The certificate
states the application it rests on.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_applications import ApplicationStatus, Procedure
from domain.disaster_certificate import HouseholdDisasterFacts

# The ledger's views; the surveys' and the applications' are made by their own modules when first used, so a
# store may hold a ledger before them (nothing surveyed, nothing applied for).
_LEDGER = frozenset({"ledger_residents", "ledger_dwellings"})
_SURVEYS, _APPLICATIONS = "dwelling_surveys", "disaster_applications"

# An arrival after 発災日時 (in_base = 0) has no household or dwelling as of then: not in the ledger for certificates.
_QUERY = """
    SELECT r.household_number, r.household_head_name, r.address, r.dwelling_id, d.address, {survey}, {accepted}
    FROM ledger_residents r
    JOIN ledger_dwellings d ON d.disaster_id = r.disaster_id AND d.dwelling_id = r.dwelling_id
        AND d.municipality_code = r.municipality_code
    {survey_join}
    WHERE r.disaster_id = :disaster AND r.municipality_code = :municipality AND r.resident_code = :resident
        AND r.in_base = 1"""
_SURVEY_JOIN = """LEFT JOIN dwelling_surveys s ON s.disaster_id = r.disaster_id AND s.dwelling_id = r.dwelling_id
        AND s.municipality_code = r.municipality_code"""
_ACCEPTED = """(SELECT group_concat(a.application_id, ',') FROM disaster_applications a
         WHERE a.disaster_id = r.disaster_id AND a.household_number = r.household_number
           AND a.municipality_code = r.municipality_code AND a.procedure = :procedure AND a.status = :status)"""


def _query(tables: set[str]) -> str:
    surveyed = _SURVEYS in tables
    return _QUERY.format(survey="s.level, s.flood_depth" if surveyed else "NULL, NULL",
                         survey_join=_SURVEY_JOIN if surveyed else "",
                         accepted=_ACCEPTED if _APPLICATIONS in tables else "NULL")


class HouseholdFactsReader:
    """The disaster store at `path`, read-only, for the certificate worker. Thread-safe (one connection, locked)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._query: str | None = None  # for the tables present
        self._complete = False  # whether every table was present: until then they are looked for at each read

    def disaster_facts(self, disaster_id: str, record: Mapping[str, Any]) -> HouseholdDisasterFacts | None:
        """The household of the requester's `record` (a decoded Resident) in the disaster's ledger of the record's
        municipality, None if the requester is not in it (or arrived after 発災日時)."""
        with self._lock:
            query = self._prepare()
            if query is None or self._con is None:
                return None
            row = self._con.execute(query, {
                "disaster": disaster_id, "municipality": record["municipality_code"],
                "resident": record["resident_code"], "procedure": Procedure.HISAI_CERTIFICATE.value,
                "status": ApplicationStatus.ACCEPTED.value}).fetchone()
        if row is None:
            return None
        household, head, address, dwelling_id, dwelling_address, level, flood_depth, accepted = row
        reported = tuple(f"被災証明書の申請（受付番号 {a}）による届出" for a in sorted(accepted.split(","))) \
            if accepted else ()
        return HouseholdDisasterFacts(disaster_id, record["municipality_code"], household, head, address, dwelling_id,
                                      dwelling_address, None if level is None else DamageLevel(level),
                                      None if flood_depth is None else FloodDepth(flood_depth),
                                      reported_damage=reported)

    def _prepare(self) -> str | None:
        """The query for the tables the store holds (None before it holds a ledger: nothing to read), opening the
        read-only connection once the store exists."""
        if self._complete:
            return self._query
        if self._con is None:
            if not self._path.exists():
                return None
            self._con = sqlite3.connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True,
                                        check_same_thread=False)
        tables = {name for (name,) in self._con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        self._query = _query(tables) if tables >= _LEDGER else None
        self._complete = tables >= _LEDGER | {_SURVEYS, _APPLICATIONS}
        return self._query

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con, self._query, self._complete = None, None, False
