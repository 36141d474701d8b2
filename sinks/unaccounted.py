"""Who is unaccounted for in a disaster, live (docs/domain.md §6.6), and the safety confirmations staff record, on
the disaster store's database (sinks.disaster_store). The rules are domain.safety's.

Nothing is copied: every answer is read by SQL from the stores as they stand — the ledger (`ledger_residents`,
sinks.disaster_ledger), the damage levels (`dwelling_surveys`, sinks.damage_assessment), the list
(`roster_people`, sinks.evacuation_roster), the stays (`shelter_stays` and `shelters`, sinks.shelters) — and the
one table this store owns:
  safety_confirmations  one row per person confirmed (safe, injured, deceased), with how it was learnt, when, who
                        recorded it and when; written once in one transaction (durable on return), never replaced.

`counts` is the cheap call (no names, no audit: counts are no one's personal data); `people` lists names for staff
and is audited (sinks.audit), as are the confirmations and the inquiries; `plans_to_follow` links the 個別避難計画
(sinks.evacuation_plans) to the disaster: the listed people of damaged dwellings not seen at any shelter, each with
their plan."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.damage_levels import DamageLevel
from domain.disaster_ledger import is_damaged
from domain.disasters import DisasterClosedError, to_millisecond
from domain.errors import InvalidArgumentError
from domain.ledger_staff_items import CONSENT_ON, CONSENT_RECIPIENT
from domain.safety import (
    AlreadyConfirmedError,
    Category,
    Confirmation,
    ConfirmationMethod,
    InquiryAnswer,
    PersonFacts,
    SafetyStatus,
    UnknownPersonError,
    Whereabouts,
    categories,
    confirmation,
    inquiry_answer,
    may_disclose,
    not_disclosed,
    tally,
    whereabouts,
)
from domain.shelter_stays import kana_key
from sinks.audit import record_access
from sinks.damage_assessment import DamageAssessment
from sinks.disaster_ledger import DisasterLedger
from sinks.evacuation_plans import EvacuationPlans, StoredPlan
from sinks.evacuation_roster import EvacuationRoster
from sinks.shelters import Shelters

_TABLES = """
    CREATE TABLE IF NOT EXISTS safety_confirmations (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        status TEXT NOT NULL, method TEXT NOT NULL, confirmed_at INTEGER NOT NULL, note TEXT NOT NULL,
        recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, resident_code)) WITHOUT ROWID;
"""

_DAMAGED_LEVELS = tuple(level.value for level in DamageLevel if is_damaged(level))

# The facts of domain.safety for the people looked for, in five statements, each a range of one index: the residents
# of the damaged dwellings (the surveys of the municipality, joined to the ledger's dwellings, then by the dwelling's
# number to its people), the listed (the roster's primary key), the open stays (the stays' person index, joined to
# the shelters for their municipality), the confirmations and the register's removals (the primary keys). Sets and
# maps in Python are cheaper than one statement uniting and grouping them (measured: bench/unaccounted_counts.py).
_DAMAGED = f"""
    SELECT l.resident_code FROM dwelling_surveys d
    JOIN ledger_dwellings w ON w.disaster_id = d.disaster_id AND w.dwelling_id = d.dwelling_id
    JOIN ledger_residents l ON l.dwelling = w.dwelling
    WHERE d.disaster_id = ?1 AND d.municipality_code = ?2 AND l.municipality_code = ?2
        AND d.level IN ({", ".join(f"'{level}'" for level in _DAMAGED_LEVELS)})"""
_LISTED = """
    SELECT resident_code FROM roster_people
    WHERE municipality_code = ? AND status = 'CURRENT' AND listed_since IS NOT NULL"""
_OPEN_STAYS = """
    SELECT s.resident_code, h.municipality_code FROM shelter_stays s JOIN shelters h USING (shelter_id)
    WHERE s.disaster_id = ?1 AND s.municipality_code = ?2 AND s.checked_out_at IS NULL"""
_CONFIRMED = "SELECT resident_code, status FROM safety_confirmations WHERE disaster_id = ?1 AND municipality_code = ?2"
_REMOVED = """
    SELECT resident_code, current_status FROM ledger_residents
    WHERE disaster_id = ?1 AND municipality_code = ?2 AND current_status != 'CURRENT'"""

# What the names list shows of the people given (a JSON array of resident codes), by reading: names from the ledger
# (from the list for a listed person the ledger lacks), the open stay, the confirmation.
_DETAILS = """
    SELECT j.value,
        coalesce(l.family_name || '　' || l.given_name, r.family_name || '　' || r.given_name),
        coalesce(l.family_name_kana || '　' || l.given_name_kana, r.family_name_kana || '　' || r.given_name_kana),
        coalesce(l.address, l.current_address, r.address), s.shelter_id, h.municipality_code, s.checked_in_at,
        c.method, c.confirmed_at, c.recorded_by
    FROM json_each(?3) j
    LEFT JOIN ledger_residents l ON l.disaster_id = ?1 AND l.municipality_code = ?2 AND l.resident_code = j.value
    LEFT JOIN roster_people r ON r.municipality_code = ?2 AND r.resident_code = j.value
    LEFT JOIN shelter_stays s
        ON s.disaster_id = ?1 AND s.municipality_code = ?2 AND s.resident_code = j.value AND s.checked_out_at IS NULL
    LEFT JOIN shelters h ON h.shelter_id = s.shelter_id
    LEFT JOIN safety_confirmations c ON c.disaster_id = ?1 AND c.municipality_code = ?2 AND c.resident_code = j.value
    ORDER BY 3, 1"""

_HOSTED = """
    SELECT count(*) FROM shelter_stays s JOIN shelters h USING (shelter_id)
    WHERE s.disaster_id = ? AND s.checked_out_at IS NULL AND h.municipality_code = ? AND s.municipality_code != ?"""

# The most names one page lists.
PAGE_SIZE = 50


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True)
class SafetyCounts:
    """The counts of one municipality in a disaster, no one's name."""

    disaster_id: str
    municipality_code: str
    looked_for: int  # residents of damaged dwellings and listed people (each person once)
    unaccounted: int
    unaccounted_by_category: dict[str, int]  # DAMAGED_DWELLING, LISTED (a person can be in both)
    sheltered: int  # looked-for people checked in at one of the municipality's own shelters
    sheltered_elsewhere: int  # checked in at another municipality's shelter, matched to this ledger
    confirmed: dict[str, int]  # by SafetyStatus
    register: int  # removed by the register after the disaster (a death or a move-out notified)
    hosted_from_elsewhere: int  # residents of other municipalities checked in at this one's shelters now

    def as_dict(self) -> dict[str, Any]:
        return {"disaster_id": self.disaster_id, "municipality_code": self.municipality_code,
                "looked_for": self.looked_for, "unaccounted": self.unaccounted,
                "unaccounted_by_category": self.unaccounted_by_category, "sheltered": self.sheltered,
                "sheltered_elsewhere": self.sheltered_elsewhere, "confirmed": self.confirmed,
                "register": self.register, "hosted_from_elsewhere": self.hosted_from_elsewhere}


@dataclass(frozen=True)
class StoredConfirmation:
    confirmation: Confirmation
    recorded_by: str


@dataclass(frozen=True)
class LookedForPerson:
    """One person looked for, as the names list shows them (personal data: for staff, audited)."""

    resident_code: str
    name: str
    name_kana: str
    address: str
    categories: tuple[Category, ...]
    whereabouts: Whereabouts
    shelter_id: str | None = None
    shelter_municipality_code: str | None = None
    since: dt.datetime | None = None
    confirmed: SafetyStatus | None = None
    method: ConfirmationMethod | None = None
    confirmed_at: dt.datetime | None = None
    confirmed_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"resident_code": self.resident_code, "name": self.name, "name_kana": self.name_kana,
                "address": self.address, "categories": [c.value for c in self.categories],
                "whereabouts": self.whereabouts.value, "shelter_id": self.shelter_id,
                "shelter_municipality_code": self.shelter_municipality_code,
                "since": None if self.since is None else self.since.isoformat(),
                "confirmed": None if self.confirmed is None else self.confirmed.value,
                "method": None if self.method is None else self.method.value,
                "confirmed_at": None if self.confirmed_at is None else self.confirmed_at.isoformat(),
                "confirmed_by": self.confirmed_by}


@dataclass(frozen=True)
class NamesQuery:
    """Which names a list shows: of a whereabouts (default the unaccounted for; None: everyone looked for), of a
    category, whose address contains `town`; the page (from 0) of PAGE_SIZE names."""

    whereabouts: Whereabouts | None = Whereabouts.UNACCOUNTED
    category: Category | None = None
    town: str = ""
    page: int = 0

    def filters(self) -> dict[str, Any]:
        return {"whereabouts": None if self.whereabouts is None else self.whereabouts.value,
                "category": None if self.category is None else self.category.value,
                "town": self.town or None, "page": self.page}


@dataclass(frozen=True)
class NamesPage:
    total: int  # every name the query matches
    people: list[LookedForPerson] = field(default_factory=list)
    page: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


@dataclass(frozen=True)
class PlanToFollow:
    """A listed person of a damaged dwelling not at any shelter nor confirmed, and their 個別避難計画 (None: none made
    yet) — whom the plan's supporters are to go to, where, with what needs."""

    person: LookedForPerson
    plan: StoredPlan | None

    def as_dict(self) -> dict[str, Any]:
        plan = None if self.plan is None else {
            "supporters": [{"name": s.name, "relation": s.relation, "phone": s.phone}
                           for s in self.plan.plan.supporters],
            "shelter_id": self.plan.plan.shelter.shelter_id, "shelter_name": self.plan.plan.shelter.name,
            "route": self.plan.plan.route, "needs": self.plan.plan.needs, "updated_by": self.plan.updated_by,
            "updated_at": self.plan.updated_at.isoformat()}
        return {**self.person.as_dict(), "plan": plan}


def names_query(form: dict[str, str]) -> NamesQuery:
    """The names form's fields (whereabouts — a Whereabouts or "all" —, category, town, page), checked."""
    shown = form.get("whereabouts", "").strip() or Whereabouts.UNACCOUNTED.value
    try:
        state = None if shown == "all" else Whereabouts(shown)
    except ValueError:
        raise InvalidArgumentError("whereabouts", f"{shown!r} is not one of all, {', '.join(Whereabouts)}") from None
    category_text = form.get("category", "").strip()
    try:
        category = Category(category_text) if category_text else None
    except ValueError:
        raise InvalidArgumentError("category", f"{category_text!r} is not one of {', '.join(Category)}") from None
    page_text = form.get("page", "").strip() or "0"
    if not page_text.isdigit():
        raise InvalidArgumentError("page", f"{page_text!r} is not a page number (0, 1, …)")
    return NamesQuery(state, category, form.get("town", "").strip()[:100], int(page_text))


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


class Unaccounted:
    """The live unaccounted-for view and the safety confirmations, over the disaster store's connection. Given
    the stores whose tables it reads, so that they exist."""

    def __init__(self, ledger: DisasterLedger, assessment: DamageAssessment, roster: EvacuationRoster,
                 plans: EvacuationPlans, shelters: Shelters, audit_file: Path) -> None:
        self.store = ledger.store
        self._ledger = ledger
        self._plans = plans
        self._shelters = shelters
        self._audit_file = audit_file
        self._con = ledger.store.connection
        del assessment, roster  # only their tables are needed: made by their constructors
        with self.store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    def _check(self, disaster_id: str, municipality_code: str) -> None:
        """UnknownDisasterError, or NoLedgerError when the municipality has no ledger of the disaster."""
        self._ledger.ledger_build(disaster_id, municipality_code)

    def _sets(self, disaster_id: str, municipality_code: str
              ) -> tuple[set[str], set[str], dict[str, str], dict[str, SafetyStatus], dict[str, str]]:
        """The damaged dwellings' residents, the listed, the open stays (resident → the shelter's municipality),
        the confirmations and the register's removals (resident → its status)."""
        key = (disaster_id, municipality_code)
        return ({r for (r,) in self._con.execute(_DAMAGED, key)},
                {r for (r,) in self._con.execute(_LISTED, (municipality_code,))},
                dict(self._con.execute(_OPEN_STAYS, key).fetchall()),
                {r: SafetyStatus(s) for r, s in self._con.execute(_CONFIRMED, key)},
                dict(self._con.execute(_REMOVED, key).fetchall()))

    def _facts(self, disaster_id: str, municipality_code: str) -> dict[str, PersonFacts]:
        """The facts of every person looked for, by resident code."""
        damaged, listed, stays, confirmed, removed = self._sets(disaster_id, municipality_code)
        return {r: PersonFacts(r in damaged, r in listed, stays.get(r), confirmed.get(r), removed.get(r, "CURRENT"))
                for r in damaged | listed}

    # -- reading ---------------------------------------------------------------------------------

    def counts(self, disaster_id: str, municipality_code: str) -> SafetyCounts:
        """The municipality's counts now (the cheap call: no names, not audited)."""
        self._check(disaster_id, municipality_code)
        damaged, listed, stays, confirmed, removed = self._sets(disaster_id, municipality_code)
        counted = tally(damaged, listed, stays, confirmed, removed.keys(), municipality_code)
        (hosted,) = self._con.execute(_HOSTED, (disaster_id, municipality_code, municipality_code)).fetchone()
        states = counted.by_whereabouts
        return SafetyCounts(disaster_id, municipality_code, counted.looked_for, states[Whereabouts.UNACCOUNTED],
                            {c.value: n for c, n in counted.unaccounted_by_category.items()},
                            states[Whereabouts.SHELTERED], states[Whereabouts.SHELTERED_ELSEWHERE],
                            {s.value: n for s, n in counted.confirmed.items()}, states[Whereabouts.REGISTER], hosted)

    def people(self, disaster_id: str, municipality_code: str, query: NamesQuery = NamesQuery(), *,
               actor: str | None = None) -> NamesPage:
        """One page of the names the query matches, by kana (personal data for staff: audited)."""
        self._check(disaster_id, municipality_code)
        town = _fold(query.town)
        chosen = self._chosen(disaster_id, municipality_code, lambda f, state: (
            (query.whereabouts is None or state is query.whereabouts)
            and (query.category is None or query.category in categories(f))))
        rows = self._details(disaster_id, municipality_code, chosen)
        matched = [row for row in rows if not town or town in _fold(row[3] or "")]
        shown = [_person(row, *chosen[row[0]]) for row in matched[query.page * PAGE_SIZE:(query.page + 1) * PAGE_SIZE]]
        record_access(self._audit_file, "safety.names", municipality_code, len(shown), actor=actor,
                      disaster_id=disaster_id, filters=query.filters())
        return NamesPage(len(matched), shown, query.page)

    def plans_to_follow(self, disaster_id: str, municipality_code: str, *, actor: str | None = None
                        ) -> list[PlanToFollow]:
        """The 個別避難計画 in the disaster (§6.5): the listed people whose dwelling is damaged and who are not at any
        shelter nor confirmed, by kana, each with their plan. Personal data for staff: the list and each plan's read
        are audited."""
        self._check(disaster_id, municipality_code)
        chosen = self._chosen(disaster_id, municipality_code, lambda f, state: (
            state is Whereabouts.UNACCOUNTED and {Category.LISTED, Category.DAMAGED_DWELLING} <= set(categories(f))))
        people = [_person(row, *chosen[row[0]]) for row in self._details(disaster_id, municipality_code, chosen)]
        record_access(self._audit_file, "safety.plans", municipality_code, len(people), actor=actor,
                      disaster_id=disaster_id)
        return [PlanToFollow(p, self._plans.plan(municipality_code, p.resident_code, actor=actor)) for p in people]

    def _chosen(self, disaster_id: str, municipality_code: str, keep: Callable[[PersonFacts, Whereabouts], bool]
                ) -> dict[str, tuple[PersonFacts, Whereabouts]]:
        """The people looked for whose facts and whereabouts `keep` keeps."""
        states = ((r, f, whereabouts(f, municipality_code))
                  for r, f in self._facts(disaster_id, municipality_code).items())
        return {r: (f, state) for r, f, state in states if keep(f, state)}

    def _details(self, disaster_id: str, municipality_code: str, chosen: Mapping[str, object]) -> list[tuple[Any, ...]]:
        return self._con.execute(_DETAILS, (disaster_id, municipality_code, json.dumps(sorted(chosen)))).fetchall()

    def confirmation_of(self, disaster_id: str, municipality_code: str, resident_code: str
                        ) -> StoredConfirmation | None:
        row = self._con.execute(
            "SELECT status, method, confirmed_at, note, recorded_by FROM safety_confirmations WHERE disaster_id=? "
            "AND municipality_code=? AND resident_code=?", (disaster_id, municipality_code, resident_code)).fetchone()
        if row is None:
            return None
        status, method, at, note, by = row
        return StoredConfirmation(Confirmation(SafetyStatus(status), ConfirmationMethod(method), _instant(at), note),
                                  by)

    # -- recording -------------------------------------------------------------------------------

    def confirm(self, disaster_id: str, municipality_code: str, resident_code: str, *, status: str, method: str,
                note: str = "", by: str, now: dt.datetime, at: dt.datetime | None = None) -> StoredConfirmation:
        """Record a person's safety confirmation, once, in one transaction (durable on return): the person must
        be in the municipality's ledger of a disaster not closed, or on its list. Audited."""
        if not by.strip():
            raise InvalidArgumentError("staff", "name the staff member who records the confirmation")
        with self.store.transaction():
            self._check(disaster_id, municipality_code)
            disaster = self.store.disaster(disaster_id)
            if disaster.closed_at is not None:
                raise DisasterClosedError(f"disaster {disaster_id} ({disaster.name}) is closed: no confirmation is "
                                          "recorded for it")
            known = self._con.execute(
                "SELECT 1 FROM ledger_residents WHERE disaster_id=?1 AND municipality_code=?2 AND resident_code=?3 "
                "UNION ALL SELECT 1 FROM roster_people WHERE municipality_code=?2 AND resident_code=?3 AND "
                "status='CURRENT' AND listed_since IS NOT NULL", (disaster_id, municipality_code, resident_code)
            ).fetchone()
            if known is None:
                raise UnknownPersonError(f"no resident {resident_code!r} in the ledger or the list of "
                                         f"{municipality_code} for disaster {disaster_id}")
            entered = confirmation(status, method, to_millisecond(now if at is None else at), note,
                                   occurred_at=disaster.occurred_at, now=now)
            held = self.confirmation_of(disaster_id, municipality_code, resident_code)
            if held is not None:
                c = held.confirmation
                raise AlreadyConfirmedError(
                    f"resident {resident_code} was already confirmed {c.status.value} ({c.method.value}) at "
                    f"{c.confirmed_at.isoformat()} by {held.recorded_by}: a confirmation is recorded once")
            self._con.execute("INSERT INTO safety_confirmations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (disaster_id, municipality_code, resident_code, entered.status.value,
                               entered.method.value, _ms(entered.confirmed_at), entered.note, by.strip(), _ms(now)))
        record_access(self._audit_file, "safety.confirm", municipality_code, 1, actor=by.strip(),
                      disaster_id=disaster_id, resident_code=resident_code, status=entered.status.value)
        return StoredConfirmation(entered, by.strip())

    # -- inquiries -------------------------------------------------------------------------------

    def inquiry(self, disaster_id: str, municipality_code: str, *, kana: str, birth_date: str, inquirer: str,
                actor: str | None = None) -> InquiryAnswer:
        """What an inquirer about a person (by name in kana and birth date) may be told (domain.safety): with the
        ledger's 提供同意 naming the inquirer, the person's whereabouts; otherwise the one answer that discloses
        nothing, the same whether the person is unknown, ambiguous or did not consent. Audited."""
        if not inquirer.strip():
            raise InvalidArgumentError("inquirer", "name who asks (the person or organisation inquiring)")
        if not kana.strip():
            raise InvalidArgumentError("kana", "the name in kana of the person asked about")
        try:
            born = dt.date.fromisoformat(birth_date.strip()).isoformat()
        except ValueError:
            raise InvalidArgumentError("birth_date", f"{birth_date!r} is not a date (YYYY-MM-DD)") from None
        self._check(disaster_id, municipality_code)
        wanted = kana_key(kana)
        matches = [r for r, family, given in self._con.execute(
            "SELECT resident_code, family_name_kana, given_name_kana FROM ledger_residents WHERE disaster_id=? AND "
            "municipality_code=? AND birth_date=?", (disaster_id, municipality_code, born))
            if kana_key(family + given) == wanted]
        answer = not_disclosed()
        if len(matches) == 1:
            items = self._ledger.staff_items(disaster_id, municipality_code, matches[0])
            if may_disclose(items.get(CONSENT_RECIPIENT.name), items.get(CONSENT_ON.name), inquirer):
                answer = self._answer(disaster_id, municipality_code, matches[0])
        record_access(self._audit_file, "safety.inquiry", municipality_code, int(answer.disclosed), actor=actor,
                      disaster_id=disaster_id, disclosed=answer.disclosed,
                      resident_code=matches[0] if len(matches) == 1 else None)
        return answer

    def _answer(self, disaster_id: str, municipality_code: str, resident_code: str) -> InquiryAnswer:
        stay = self._con.execute(
            "SELECT h.municipality_code, h.name, s.checked_in_at FROM shelter_stays s JOIN shelters h "
            "USING (shelter_id) WHERE s.disaster_id=? AND s.municipality_code=? AND s.resident_code=? AND "
            "s.checked_out_at IS NULL LIMIT 1", (disaster_id, municipality_code, resident_code)).fetchone()
        held = self.confirmation_of(disaster_id, municipality_code, resident_code)
        (status,) = self._con.execute("SELECT current_status FROM ledger_residents WHERE disaster_id=? AND "
                                      "municipality_code=? AND resident_code=?",
                                      (disaster_id, municipality_code, resident_code)).fetchone()
        confirmed = None if held is None else held.confirmation.status
        state = whereabouts(PersonFacts(False, False, None if stay is None else stay[0], confirmed, status),
                            municipality_code)
        return inquiry_answer(state, confirmed, None if stay is None else stay[1],
                              None if stay is None else _instant(stay[2]))


def _person(row: tuple[Any, ...], facts: PersonFacts, state: Whereabouts) -> LookedForPerson:
    resident, name, kana, address, shelter_id, shelter_code, since, method, confirmed_at, confirmed_by = row
    return LookedForPerson(
        resident, name or "", kana or "", address or "", categories(facts), state, shelter_id, shelter_code,
        None if since is None else _instant(since), facts.confirmed,
        None if method is None else ConfirmationMethod(method),
        None if confirmed_at is None else _instant(confirmed_at), confirmed_by)
