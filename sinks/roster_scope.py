"""What one signed-in staff member may read and change of the 避難行動要支援者名簿 and the 個別避難計画: the scoped
repository the roster pages (streams.roster_web) are given instead of the stores, made like sinks.staff_scope's
StaffScope for one StaffMember.

Isolation below the handlers: every method passes the member's municipality to the roster's and the plans' queries
itself (there is no parameter to name another), so a resident code of another municipality is simply not on the
list that is asked: OutOfScope (answered 404, as for someone not listed), and the attempt audited
(`staff.refused`).

Every read of personal data is audited (sinks.audit, the member's login as the actor) by the roster's own reads:
the search and extractions (`staff.roster.search`, `staff.roster.csv`, `staff.roster.pdf`), a person's page
(`staff.roster.person`, with `roster.history`, `roster.plan`, `roster.tasks`), the consent tasks (`roster.tasks`),
a plan's PDF (`staff.roster.plan.pdf`); and every change here (`staff.roster.consent`, `staff.roster.phone`,
`staff.roster.plan.set`). Each change is one transaction of the disaster store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from domain.errors import InvalidArgumentError
from domain.evacuation_plan import (
    MAX_SUPPORTERS,
    EvacuationPlan,
    Shelter,
    evacuation_plan,
    shipped_shelters,
    supporter_of,
)
from domain.evacuation_roster import ConsentDecision, consent_decision, phone_number
from domain.japan_time import japan_date
from domain.roster_extraction import RosterFilter
from domain.staff_accounts import StaffMember
from sinks.evacuation_plans import EvacuationPlans, StoredPlan
from sinks.evacuation_roster import ConsentTask, EvacuationRoster, RosterChange, RosterPerson, UnknownRosterPersonError
from sinks.staff_scope import MemberScope


@dataclass(frozen=True)
class RosterPage:
    """A listed person's page: the list's items, their roster history, their open consent tasks, their plan."""

    person: RosterPerson
    history: list[RosterChange]
    tasks: list[ConsentTask]
    plan: StoredPlan | None


class RosterScope(MemberScope):
    _OUT_OF_SCOPE = "is not on the list of"

    def __init__(self, member: StaffMember, roster: EvacuationRoster, plans: EvacuationPlans, audit_file: Path,
                 clock: Callable[[], dt.datetime]) -> None:
        super().__init__(member, audit_file, clock)
        self._roster = roster
        self._plans = plans

    def _listed(self, resident_code: str) -> None:
        """Nothing if the person is on the member's municipality's list, else OutOfScope (audited)."""
        try:
            self._roster.require_listed(self._code, resident_code)
        except UnknownRosterPersonError:
            raise self._refuse(f"roster person {resident_code!r}") from None

    # -- reading -------------------------------------------------------------------------------

    def people(self, wanted: RosterFilter, action: str = "staff.roster.search") -> list[RosterPerson]:
        """The listed people of the extraction (audited by the roster with `action`)."""
        return self._roster.listed(self._code, actor=self.member.login, town=wanted.town, criterion=wanted.criterion,
                                   consent=wanted.consent, name=wanted.name, action=action)

    def csv(self, wanted: RosterFilter) -> str:
        return self._roster.csv_export(self.people(wanted, "staff.roster.csv"))

    def tasks(self) -> list[ConsentTask]:
        """The open consent tasks of the municipality."""
        return self._roster.tasks(self._code, actor=self.member.login)

    def page(self, resident_code: str) -> RosterPage:
        self._listed(resident_code)
        person = self._roster.person(self._code, resident_code, actor=self.member.login, action="staff.roster.person")
        history = self._roster.history(self._code, resident_code, actor=self.member.login)
        tasks = [t for t in self._roster.tasks(self._code, actor=self.member.login) if t.resident_code == resident_code]
        return RosterPage(person, history, tasks, self._plans.plan(self._code, resident_code, actor=self.member.login))

    def plan_of(self, resident_code: str) -> tuple[RosterPerson, StoredPlan | None]:
        """The person and their plan, for the plan's PDF."""
        self._listed(resident_code)
        person = self._roster.person(self._code, resident_code, actor=self.member.login,
                                     action="staff.roster.plan.pdf")
        return person, self._plans.plan(self._code, resident_code, actor=self.member.login)

    def shelters(self) -> list[Shelter]:
        """The shelters a plan of the municipality may lead to (the shipped open data)."""
        return shipped_shelters(self._code)

    # -- changing ------------------------------------------------------------------------------

    def record_consent(self, resident_code: str, decision: str, on: str) -> RosterPerson:
        """A consent decision (given, refused, withdrawn) with its date, today at the latest."""
        self._listed(resident_code)
        chosen: ConsentDecision = consent_decision(decision)
        now = self._clock()
        try:
            day = dt.date.fromisoformat(on.strip()) if on.strip() else japan_date(now)
        except ValueError:
            raise InvalidArgumentError("on", f"{on!r} is not a date (YYYY-MM-DD)") from None
        if day > japan_date(now):
            raise InvalidArgumentError("on", f"{day.isoformat()} is in the future: record a decision once it is made")
        person = self._roster.record_consent(self._code, resident_code, chosen, day, by=self.member.login, now=now)
        self._audit("staff.roster.consent", 1, resident_code=resident_code, decision=chosen.value,
                    decided_on=day.isoformat())
        return person

    def set_phone(self, resident_code: str, phone: str) -> None:
        self._listed(resident_code)
        self._roster.set_phone(self._code, resident_code, phone_number(phone), by=self.member.login,
                               now=self._clock())
        self._audit("staff.roster.phone", 1, resident_code=resident_code)

    def set_plan(self, resident_code: str, form: Mapping[str, str]) -> EvacuationPlan:
        """The plan of the form: supporters `supporter_name_N`, `supporter_relation_N`, `supporter_phone_N` (N from 1
        to MAX_SUPPORTERS; a row left empty is no supporter), `shelter`, `route`, `needs`."""
        self._listed(resident_code)
        supporters = []
        for n in range(1, MAX_SUPPORTERS + 1):
            name, relation, phone = (form.get(f"supporter_{part}_{n}", "") for part in ("name", "relation", "phone"))
            if (name + relation + phone).strip():
                supporters.append(supporter_of(name, relation, phone))
        shelter = form.get("shelter", "").strip()
        if not shelter:
            raise InvalidArgumentError("shelter", "choose the destination shelter")
        plan = evacuation_plan(self._code, supporters=supporters, shelter_id=shelter,
                               route=form.get("route", "").strip(), needs=form.get("needs", "").strip())
        self._plans.set_plan(self._code, resident_code, plan, by=self.member.login, now=self._clock())
        self._audit("staff.roster.plan.set", 1, resident_code=resident_code, supporters=len(plan.supporters),
                    shelter_id=plan.shelter.shelter_id)
        return plan
