"""What the certificate worker knows of disasters: which are open where, and the households in their ledgers.

`DisasterFactsIndex` is the worker's in-memory index, fed from the cluster and read by the issuance decision
(domain.issuance_decision.Lookups.declared_disasters and .disaster_facts). Thread-safe: the worker's feed
thread writes it while the request loop reads it.

- Disasters: `apply_disaster_event` takes each DisasterEvent of bcl.disaster.events as AvroSerde decodes it.
  Delivery is at least once, so an event is applied once by its event_id; every event carries the whole
  disaster, so the latest (highest outbox sequence) is its state, and an older one arriving late, or a
  republished one, changes nothing. A disaster is open (its certificates can be issued) from its DECLARED
  event until its CLOSED event.
- Households (the integrator feeds these from the ledger's and the surveys' topics):
  `apply_ledger_resident` (a resident's row of a disaster's ledger: the household and dwelling as of
  発災日時; None removes it), `apply_dwelling_survey` (a dwelling's current damage level, flood depth and
  remarks; None: not surveyed, or the survey withdrawn) and `apply_damage_report` (what a household
  reported damaged besides the dwelling, for the 被災証明書). Each call replaces what the index held for its
  key, so a redelivered or replayed state changes nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from domain.damage_levels import DamageLevel, FloodDepth
from domain.disaster_certificate import HouseholdDisasterFacts
from domain.disasters import Disaster, DisasterKind


@dataclass(frozen=True)
class LedgerResident:
    """A resident's row of a disaster's ledger, as far as certificates need it (as of 発災日時)."""

    disaster_id: str
    municipality_code: str
    resident_code: str
    household_number: str
    household_head_name: str
    household_address: str
    dwelling_id: str
    dwelling_address: str


@dataclass(frozen=True)
class DwellingSurvey:
    """A dwelling's current survey result in a disaster."""

    level: DamageLevel
    flood_depth: FloodDepth | None = None
    remarks: str = ""


def disaster_of_event(event: Mapping[str, Any]) -> Disaster:
    """The disaster a decoded DisasterEvent carries, as it stands after the event."""
    return Disaster(event["disaster_id"], event["name"], DisasterKind[event["kind"]],
                    tuple(event["municipality_codes"]), _utc(event["occurred_at"]), _utc(event["declared_at"]),
                    None if event["closed_at"] is None else _utc(event["closed_at"]))


def _utc(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(dt.UTC)


class DisasterFactsIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events_seen: set[str] = set()
        self._disasters: dict[str, tuple[int, Disaster]] = {}  # disaster id → (sequence, state)
        self._residents: dict[tuple[str, str, str], LedgerResident] = {}  # (disaster, municipality, resident code)
        self._surveys: dict[tuple[str, str], DwellingSurvey] = {}  # (disaster, dwelling id)
        self._reports: dict[tuple[str, str, str], tuple[str, ...]] = {}  # (disaster, municipality, household)
        self.events_received = 0  # disaster events given to apply_disaster_event, duplicates included

    # -- fed ------------------------------------------------------------------------------------

    def apply_disaster_event(self, event: Mapping[str, Any]) -> bool:
        """Applies a decoded DisasterEvent once; whether it changed the disaster's state."""
        with self._lock:
            self.events_received += 1
            if event["event_id"] in self._events_seen:
                return False
            self._events_seen.add(event["event_id"])
            held = self._disasters.get(event["disaster_id"])
            if held is not None and held[0] >= event["sequence"]:
                return False  # older than the state held: the latest event is the state
            self._disasters[event["disaster_id"]] = (event["sequence"], disaster_of_event(event))
            return True

    def apply_ledger_resident(self, disaster_id: str, municipality_code: str, resident_code: str,
                              row: LedgerResident | None) -> None:
        key = (disaster_id, municipality_code, resident_code)
        with self._lock:
            if row is None:
                self._residents.pop(key, None)
            else:
                self._residents[key] = row

    def apply_dwelling_survey(self, disaster_id: str, dwelling_id: str, survey: DwellingSurvey | None) -> None:
        with self._lock:
            if survey is None:
                self._surveys.pop((disaster_id, dwelling_id), None)
            else:
                self._surveys[(disaster_id, dwelling_id)] = survey

    def apply_damage_report(self, disaster_id: str, municipality_code: str, household_number: str,
                            reported: Sequence[str]) -> None:
        with self._lock:
            self._reports[(disaster_id, municipality_code, household_number)] = tuple(reported)

    # -- read -----------------------------------------------------------------------------------

    def declared_disasters(self, municipality_code: str) -> list[Disaster]:
        """The disasters open (declared, not closed) for the municipality."""
        with self._lock:
            return [d for _, d in self._disasters.values()
                    if d.closed_at is None and municipality_code in d.municipality_codes]

    def disaster_facts(self, disaster_id: str, record: Mapping[str, Any]) -> HouseholdDisasterFacts | None:
        """The household of the requester's `record` (a decoded Resident) in the disaster's ledger, None if the
        requester is not in it."""
        with self._lock:
            row = self._residents.get((disaster_id, record["municipality_code"], record["resident_code"]))
            if row is None:
                return None
            survey = self._surveys.get((disaster_id, row.dwelling_id))
            reported = self._reports.get((disaster_id, row.municipality_code, row.household_number), ())
        facts = HouseholdDisasterFacts(disaster_id, row.municipality_code, row.household_number,
                                       row.household_head_name, row.household_address, row.dwelling_id,
                                       row.dwelling_address, reported_damage=reported)
        if survey is None:
            return facts
        return replace(facts, damage_level=survey.level, flood_depth=survey.flood_depth, remarks=survey.remarks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._disasters)
