"""What the certificate worker knows of disasters: which are open where.

`DisasterFactsIndex` is the worker's in-memory index of the disasters, fed from bcl.disaster.events and read by the
issuance decision (domain.issuance_decision.Lookups.declared_disasters). Thread-safe: the worker's feed thread
writes it while the request loop reads it. The households in a disaster's ledger are not here: the worker reads
them from the disaster store on demand (sinks.household_facts).

`apply_disaster_event` takes each DisasterEvent of bcl.disaster.events as AvroSerde decodes it. Delivery is at
least once, so an event is applied once by its event_id; every event carries the whole disaster, so the latest
(highest outbox sequence) is its state, and an older one arriving late, or a republished one, changes nothing. A
disaster is open (its certificates can be issued) from its DECLARED event until its CLOSED event.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

from domain.disasters import Disaster, DisasterKind


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

    # -- read -----------------------------------------------------------------------------------

    def declared_disasters(self, municipality_code: str) -> list[Disaster]:
        """The disasters open (declared, not closed) for the municipality."""
        with self._lock:
            return [d for _, d in self._disasters.values()
                    if d.closed_at is None and municipality_code in d.municipality_codes]

    def __len__(self) -> int:
        with self._lock:
            return len(self._disasters)
