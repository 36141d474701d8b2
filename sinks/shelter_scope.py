"""What one signed-in staff member may read and change of the shelters (sinks.shelters): the scoped repository the
shelter pages (streams.shelter_web) are given, made like sinks.staff_scope's StaffScope for one StaffMember.

Isolation below the handlers: the member's municipality is passed to every query here (its shelters, its
openings), and a shelter or disaster named in a URL is looked up in it: another municipality's shelter, or a
disaster not declared for the member's municipality, is OutOfScope (404, as for one that does not exist) and the
attempt is audited (`staff.refused`). The board shows counts, no one's name; the changes are audited
(`staff.shelter.capacity`, `staff.shelter.open`, `staff.shelter.close` with how many were checked out), each one
transaction of the disaster store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from domain.disasters import Disaster
from domain.shelters import Occupancy, UnknownShelterError, capacity
from domain.staff_accounts import StaffMember
from sinks.shelters import Opening, ShelterEntry, Shelters
from sinks.staff_scope import MemberScope


@dataclass(frozen=True)
class BoardRow:
    """One shelter of the municipality in a disaster: its opening (None: not opened) and the live occupancy."""

    entry: ShelterEntry
    opening: Opening | None
    occupancy: Occupancy | None  # for an open shelter

    @property
    def is_open(self) -> bool:
        return self.opening is not None and self.opening.closed_at is None


class ShelterScope(MemberScope):
    def __init__(self, member: StaffMember, shelters: Shelters, audit_file: Path,
                 clock: Callable[[], dt.datetime]) -> None:
        super().__init__(member, audit_file, clock)
        self._shelters = shelters

    def disasters(self) -> list[Disaster]:
        return self._declared_disasters(self._shelters.store)

    def disaster(self, disaster_id: str) -> Disaster:
        return self._declared(self._shelters.store, disaster_id)

    def shelter(self, shelter_id: str) -> ShelterEntry:
        try:
            entry = self._shelters.shelter(shelter_id)
        except UnknownShelterError:
            raise self._refuse(f"shelter {shelter_id!r}") from None
        if entry.shelter.municipality_code != self._code:
            raise self._refuse(f"shelter {shelter_id!r}")
        return entry

    def entries(self) -> list[ShelterEntry]:
        """The municipality's imported shelters."""
        return self._shelters.shelters(self._code)

    def board(self, disaster_id: str) -> list[BoardRow]:
        """Every shelter of the municipality in the disaster, the open ones first, with the headcount now against
        the capacity of the period now (day or night)."""
        self.disaster(disaster_id)
        now = self._clock()
        live = {o.entry.shelter.shelter_id: o.occupancy for o in self._shelters.occupancy(disaster_id, now, self._code)}
        openings = {o.shelter_id: o for o in self._shelters.openings(disaster_id, self._code)}
        rows = []
        for entry in self.entries():
            opening = openings.get(entry.shelter.shelter_id)
            is_open = opening is not None and opening.closed_at is None
            rows.append(BoardRow(entry, opening, live.get(entry.shelter.shelter_id) if is_open else None))
        return sorted(rows, key=lambda r: (not r.is_open, r.opening is None, r.entry.shelter.shelter_id))

    # -- changing ------------------------------------------------------------------------------

    def set_capacity(self, shelter_id: str, day: str, night: str) -> ShelterEntry:
        self.shelter(shelter_id)
        entered = capacity(day, night)
        changed = self._shelters.set_capacity(shelter_id, entered, self.member.login, self._clock())
        self._audit("staff.shelter.capacity", 0, shelter_id=shelter_id, day=entered.day, night=entered.night)
        return changed

    def open(self, disaster_id: str, shelter_id: str) -> Opening:
        self.disaster(disaster_id)
        self.shelter(shelter_id)
        opening = self._shelters.open(disaster_id, shelter_id, self.member.login, self._clock())
        self._audit("staff.shelter.open", 0, disaster_id=disaster_id, shelter_id=shelter_id)
        return opening

    def close(self, disaster_id: str, shelter_id: str) -> int:
        """Close the shelter (everyone in it checked out); how many were."""
        self.disaster(disaster_id)
        self.shelter(shelter_id)
        _, checked_out = self._shelters.close(disaster_id, shelter_id, self.member.login, self._clock())
        self._audit("staff.shelter.close", checked_out, disaster_id=disaster_id, shelter_id=shelter_id,
                    checked_out=checked_out)
        return checked_out
