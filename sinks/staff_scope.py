"""What one signed-in staff member may read and change of disaster support: the scoped repository the staff
pages (streams.staff_web) are given instead of the stores.

Isolation below the handlers: a `StaffScope` is made for one StaffMember and holds the ledger and the damage
assessment privately; each of its methods passes the member's municipality to the store's query itself
(DisasterLedger.residents/dwellings, DamageAssessment.preview_area/apply_area for that municipality), so no
handler can ask for another municipality's rows — there is no parameter to name one. A disaster, household,
person or dwelling outside the scope is not found (OutOfScope, answered 404 like one that does not exist, so
that a URL does not tell whether another municipality has it), and the attempt is audited (`staff.refused`).

Every read of personal data is audited (sinks.audit, the staff member's login as the actor): the search
(`staff.ledger.search`, with the criteria and how many rows), a household with its support money
(`staff.household.read`), the map's dwellings (`staff.area.map`), a PDF extract (`staff.household.extract`); and
every change (`staff.item.set`, `staff.survey`, `staff.area.apply`, `staff.support.pay`). Changes are each one
transaction of their store (durable on return)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry

from domain.damage_levels import DamageLevel
from domain.disasters import Disaster, UnknownDisasterError
from domain.errors import BclError
from domain.japan_time import japan_date
from domain.ledger_staff_items import LedgerSearch, staff_item_values
from domain.staff_accounts import StaffMember
from sinks.audit import record_access
from sinks.damage_assessment import AreaPreview, AreaRegistration, Assessment, Change, DamageAssessment
from sinks.disaster_applications import Application, DisasterApplications
from sinks.disaster_ledger import DisasterLedger, LedgerDwelling, NoLedgerError
from sinks.disaster_store import DisasterStore
from sinks.support_payments import HouseholdSupport, Payment, SupportPayments

# The most rows a search lists (the counts cover every match).
SEARCH_ROWS = 200


class OutOfScope(BclError, LookupError):
    """Not found in the staff member's municipality (whether it exists elsewhere is not said)."""


class NotPermitted(BclError):
    """The staff member's role does not allow this."""


def household_of(row: Mapping[str, Any]) -> str:
    """A person's household in the ledger: the one at 発災日時, for an arrival after it the current one."""
    return str(row["household_number"] or row["current_household_number"])


def _dwelling_of(row: Mapping[str, Any]) -> str:
    return str(row["dwelling_id"] or row["current_dwelling_id"])


@dataclass(frozen=True)
class Person:
    row: dict[str, Any]  # the ledger row (sinks.disaster_ledger COLUMNS)
    items: dict[str, str]  # staff-entered items by name

    @property
    def vulnerable(self) -> bool:
        return "vulnerable_reason" in self.items


@dataclass(frozen=True)
class SearchResult:
    matches: int
    households: int
    by_level: dict[str, int]  # level code ("none": not assessed) → people
    by_flag: dict[str, int]
    vulnerable: int
    rows: list[tuple[Person, DamageLevel | None]]  # at most SEARCH_ROWS


@dataclass(frozen=True)
class Household:
    disaster: Disaster
    municipality_code: str
    household_number: str
    members: list[Person]
    dwelling: LedgerDwelling | None
    assessment: Assessment | None
    history: list[Change] = field(default_factory=list)
    support: HouseholdSupport | None = None  # the support amounts applied for and paid


class MemberScope:
    """What every scope of a signed-in staff member has (this module's StaffScope, sinks.roster_scope,
    sinks.shelter_scope): the member's municipality, the audit of each read or refusal in its name."""

    _OUT_OF_SCOPE = "is not of"  # completes "<what> … <municipality code>" in a refusal's message

    def __init__(self, member: StaffMember, audit_file: Path, clock: Callable[[], dt.datetime]) -> None:
        self.member = member
        self._audit_file = audit_file
        self._clock = clock

    @property
    def _code(self) -> str:
        return self.member.municipality_code

    def _audit(self, action: str, records: int, **details: Any) -> None:
        record_access(self._audit_file, action, self._code, records, actor=self.member.login, **details)

    def _refuse(self, what: str, **details: Any) -> OutOfScope:
        self._audit("staff.refused", 0, requested=what, **details)
        return OutOfScope(f"{what} {self._OUT_OF_SCOPE} {self._code}")

    def _declared_disasters(self, store: DisasterStore) -> list[Disaster]:
        """The disasters of the store declared for the member's municipality."""
        return [d for d in store.disasters() if self._code in d.municipality_codes]

    def _declared(self, store: DisasterStore, disaster_id: str) -> Disaster:
        """The disaster, if declared for the member's municipality; else OutOfScope (one that does not exist
        too), audited."""
        try:
            disaster = store.disaster(disaster_id)
        except UnknownDisasterError:
            raise self._refuse(f"disaster {disaster_id!r}", disaster_id=disaster_id) from None
        if self._code not in disaster.municipality_codes:
            raise self._refuse(f"disaster {disaster_id!r}", disaster_id=disaster_id)
        return disaster


class StaffScope(MemberScope):
    _OUT_OF_SCOPE = "is not in the ledgers of"

    def __init__(self, member: StaffMember, ledger: DisasterLedger, assessment: DamageAssessment,
                 applications: DisasterApplications, audit_file: Path, clock: Callable[[], dt.datetime], *,
                 support: SupportPayments) -> None:
        super().__init__(member, audit_file, clock)
        self._support = support
        self._ledger = ledger
        self._assessment = assessment
        self._applications = applications

    # -- scope ---------------------------------------------------------------------------------

    def _own(self, municipality_code: str, what: str, **details: Any) -> None:
        """A URL names the municipality of a household, person or dwelling (their numbers are per municipality);
        only the member's own is found."""
        if municipality_code != self.member.municipality_code:
            raise self._refuse(what, requested_municipality=municipality_code, **details)

    def disasters(self) -> list[Disaster]:
        """The disasters declared for the member's municipality."""
        return self._declared_disasters(self._ledger.store)

    def disaster(self, disaster_id: str) -> Disaster:
        return self._declared(self._ledger.store, disaster_id)

    def _rows(self, disaster_id: str) -> list[dict[str, Any]]:
        self.disaster(disaster_id)
        try:
            return self._ledger.residents(disaster_id, self.member.municipality_code)
        except NoLedgerError:
            raise self._refuse(f"the ledger of disaster {disaster_id!r}", disaster_id=disaster_id) from None

    def _person(self, disaster_id: str, row: dict[str, Any]) -> Person:
        return Person(row, self._ledger.staff_items(disaster_id, self.member.municipality_code, row["resident_code"]))

    def _levels(self, disaster_id: str) -> dict[str, DamageLevel]:
        code = self.member.municipality_code
        return {a.dwelling_id: a.level for a in self._assessment.assessments(disaster_id)
                if a.municipality_code == code}

    # -- reading -------------------------------------------------------------------------------

    def search(self, disaster_id: str, criteria: LedgerSearch) -> SearchResult:
        rows = self._rows(disaster_id)
        levels = self._levels(disaster_id)
        found: list[tuple[Person, DamageLevel | None]] = []
        for row in rows:
            person = self._person(disaster_id, row)
            level = levels.get(_dwelling_of(row))
            kana = f"{row['family_name_kana']}{row['given_name_kana']}"
            addresses = tuple(a for a in (row["address"], row["current_address"]) if a)
            flags = frozenset(f for f in row["flags"].split(",") if f)
            if criteria.matches(kana, addresses, level, person.vulnerable, flags):
                found.append((person, level))
        by_flag: Counter[str] = Counter(f for p, _ in found for f in p.row["flags"].split(",") if f)
        result = SearchResult(
            matches=len(found), households=len({household_of(p.row) for p, _ in found}),
            by_level=dict(Counter("none" if lv is None else lv.value for _, lv in found)), by_flag=dict(by_flag),
            vulnerable=sum(p.vulnerable for p, _ in found), rows=found[:SEARCH_ROWS])
        self._audit("staff.ledger.search", len(result.rows), disaster_id=disaster_id, matches=len(found),
                    criteria={k: str(v) for k, v in vars(criteria).items() if v})
        return result

    def household(self, disaster_id: str, municipality_code: str, household_number: str,
                  action: str = "staff.household.read") -> Household:
        self._own(municipality_code, f"household {household_number!r}", disaster_id=disaster_id,
                  household_number=household_number)
        disaster = self.disaster(disaster_id)
        members = [self._person(disaster_id, r) for r in self._rows(disaster_id) if household_of(r) == household_number]
        if not members:
            raise self._refuse(f"household {household_number!r}", disaster_id=disaster_id,
                               household_number=household_number)
        dwelling_id = _dwelling_of(members[0].row)
        dwelling = next((d for d in self._ledger.dwellings(disaster_id, self.member.municipality_code)
                         if d.dwelling_id == dwelling_id), None)
        current = self._assessment.assessments(disaster_id, dwelling_id)
        history = list(self._assessment.history(disaster_id, dwelling_id))
        self._audit(action, len(members), disaster_id=disaster_id, household_number=household_number,
                    resident_codes=[m.row["resident_code"] for m in members])
        support = self._support.recorded(disaster_id, self.member.municipality_code, household_number)
        return Household(disaster, self.member.municipality_code, household_number, members, dwelling,
                         current[0] if current else None, history, support)

    def dwellings(self, disaster_id: str) -> list[tuple[LedgerDwelling, DamageLevel | None]]:
        """The municipality's dwellings with their level, for the area map."""
        self.disaster(disaster_id)
        try:
            dwellings = self._ledger.dwellings(disaster_id, self.member.municipality_code)
        except NoLedgerError:
            raise self._refuse(f"the ledger of disaster {disaster_id!r}", disaster_id=disaster_id) from None
        levels = self._levels(disaster_id)
        self._audit("staff.area.map", len(dwellings), disaster_id=disaster_id)
        return [(d, levels.get(d.dwelling_id)) for d in dwellings]

    # -- changing ------------------------------------------------------------------------------

    def set_items(self, disaster_id: str, municipality_code: str, resident_code: str, form: Mapping[str, str]) -> str:
        """The staff items of a person of the member's municipality, in one transaction; the person's household."""
        self._own(municipality_code, f"resident {resident_code!r}", disaster_id=disaster_id)
        now = self._clock()
        rows = [r for r in self._rows(disaster_id) if r["resident_code"] == resident_code]
        if not rows:
            raise self._refuse(f"resident {resident_code!r}", disaster_id=disaster_id)
        values = staff_item_values(form, japan_date(now))
        self._ledger.set_staff_items(disaster_id, self.member.municipality_code, resident_code, values,
                                     self.member.login, now)
        self._audit("staff.item.set", 1, disaster_id=disaster_id, resident_code=resident_code,
                    items=sorted(values))
        return household_of(rows[0])

    def survey(self, disaster_id: str, municipality_code: str, dwelling_id: str, *, level: str | None,
               loss_ratio: str | None, reason: str | None, surveyed_on: dt.date | None) -> Assessment:
        self._own(municipality_code, f"dwelling {dwelling_id!r}", disaster_id=disaster_id)
        self.disaster(disaster_id)
        if not any(d.dwelling_id == dwelling_id for d in self._ledger.dwellings(disaster_id,
                                                                                self.member.municipality_code)):
            raise self._refuse(f"dwelling {dwelling_id!r}", disaster_id=disaster_id)
        result = self._assessment.survey(disaster_id, dwelling_id, surveyor=self.member.login,
                                         surveyed_on=surveyed_on, now=self._clock(), loss_ratio=loss_ratio,
                                         level=level, reason=reason)
        self._audit("staff.survey", 1, disaster_id=disaster_id, dwelling_id=dwelling_id, level=result.level.value)
        return result

    def preview_area(self, disaster_id: str, area: BaseGeometry, level: DamageLevel,
                     overwrite_surveyed: bool) -> AreaPreview:
        self.disaster(disaster_id)
        return self._assessment.preview_area(disaster_id, self.member.municipality_code, area, level,
                                             overwrite_surveyed)

    def apply_area(self, disaster_id: str, area: BaseGeometry, level: DamageLevel, overwrite_surveyed: bool,
                   reason: str | None) -> AreaRegistration:
        self.disaster(disaster_id)
        if not self.member.may_register_areas:
            raise NotPermitted("registering an area needs the SUPERVISOR role")
        applied = self._assessment.apply_area(disaster_id, self.member.municipality_code, area, level,
                                              staff=self.member.login, now=self._clock(),
                                              overwrite_surveyed=overwrite_surveyed, reason=reason)
        self._audit("staff.area.apply", applied.preview.changes, disaster_id=disaster_id, area_id=applied.area_id,
                    level=level.value)
        return applied

    def pay(self, disaster_id: str, municipality_code: str, household_number: str, *, procedure: str, amount: int,
            paid_on: dt.date, reference: str) -> Payment:
        """A support payment to a household of the member's municipality (one transaction of its store)."""
        self._own(municipality_code, f"household {household_number!r}", disaster_id=disaster_id,
                  household_number=household_number)
        self.disaster(disaster_id)
        if not any(household_of(r) == household_number for r in self._rows(disaster_id)):
            raise self._refuse(f"household {household_number!r}", disaster_id=disaster_id,
                               household_number=household_number)
        paid = self._support.pay(disaster_id, self.member.municipality_code, household_number, procedure,
                                 amount=amount, paid_on=paid_on, staff=self.member.login, reference=reference,
                                 now=self._clock())
        self._audit("staff.support.pay", 1, disaster_id=disaster_id, household_number=household_number,
                    procedure=paid.procedure.value, amount=paid.amount, reference=paid.reference)
        return paid

    # -- applications ----------------------------------------------------------------------------

    def applications(self, disaster_id: str) -> list[Application]:
        """The inbox: the disaster's applications matched to the member's municipality, and the unmatched ones
        (which every municipality of the disaster is shown: sinks.disaster_applications)."""
        self.disaster(disaster_id)
        found = self._applications.applications(disaster_id, self.member.municipality_code)
        self._audit("staff.applications.read", len(found), disaster_id=disaster_id)
        return found

    def decide(self, disaster_id: str, application_id: str, accept: bool, reason: str | None) -> Application:
        """Accept or reject an open application of the inbox (one transaction of the applications' store)."""
        self.disaster(disaster_id)
        inbox = {a.application_id for a in self._applications.applications(disaster_id,
                                                                              self.member.municipality_code)}
        if application_id not in inbox:
            raise self._refuse(f"application {application_id!r}", disaster_id=disaster_id)
        now = self._clock()
        decided = (self._applications.accept(application_id, self.member.login, now, reason) if accept else
                   self._applications.reject(application_id, self.member.login, reason, now))
        self._audit("staff.application.decide", 1, disaster_id=disaster_id, application_id=application_id,
                    status=decided.status.value)
        return decided
