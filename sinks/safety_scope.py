"""What one signed-in staff member may read and record of who is unaccounted for (sinks.unaccounted): the scoped
repository the page of streams.safety_web is given, made like sinks.shelter_scope's ShelterScope for one
StaffMember.

Isolation below the handlers: the member's municipality is passed to every query and confirmation here; a
disaster not declared for it, or a resident code not of its ledger, is OutOfScope (404, as for one that does not
exist) and the attempt is audited (`staff.refused`). Every read of names is audited by the store (`safety.names`,
the member as the actor), and so is every confirmation (`safety.confirm`); the counts name no one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path

from domain.disasters import Disaster
from domain.safety import UnknownPersonError
from domain.staff_accounts import StaffMember
from sinks.staff_scope import MemberScope
from sinks.unaccounted import NamesPage, NamesQuery, PlanToFollow, SafetyCounts, StoredConfirmation, Unaccounted


class SafetyScope(MemberScope):
    def __init__(self, member: StaffMember, unaccounted: Unaccounted, audit_file: Path,
                 clock: Callable[[], dt.datetime]) -> None:
        super().__init__(member, audit_file, clock)
        self._unaccounted = unaccounted

    def disasters(self) -> list[Disaster]:
        return self._declared_disasters(self._unaccounted.store)

    def disaster(self, disaster_id: str) -> Disaster:
        return self._declared(self._unaccounted.store, disaster_id)

    def counts(self, disaster_id: str) -> SafetyCounts:
        self.disaster(disaster_id)
        return self._unaccounted.counts(disaster_id, self._code)

    def people(self, disaster_id: str, query: NamesQuery) -> NamesPage:
        """A page of the municipality's names (audited by the store, the member as the actor)."""
        self.disaster(disaster_id)
        return self._unaccounted.people(disaster_id, self._code, query, actor=self.member.login)

    def plans_to_follow(self, disaster_id: str) -> list[PlanToFollow]:
        """The municipality's listed people of damaged dwellings not at any shelter nor confirmed, with their plans
        (audited by the store, the member as the actor)."""
        self.disaster(disaster_id)
        return self._unaccounted.plans_to_follow(disaster_id, self._code, actor=self.member.login)

    def confirm(self, disaster_id: str, resident_code: str, form: Mapping[str, str]) -> StoredConfirmation:
        """Record the safety confirmation of a resident of the member's municipality (status, method, note of
        the form), by the member, now."""
        self.disaster(disaster_id)
        try:
            return self._unaccounted.confirm(disaster_id, self._code, resident_code, status=form.get("status", ""),
                                             method=form.get("method", ""), note=form.get("note", ""),
                                             by=self.member.login, now=self._clock())
        except UnknownPersonError:
            raise self._refuse(f"resident {resident_code!r}", disaster_id=disaster_id) from None
