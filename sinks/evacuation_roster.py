"""The 避難行動要支援者名簿 of each municipality (docs/domain.md §6.5), kept live in the disaster store's file.

Inputs: the materialised register (bcl.residents, `Resident` records as AvroSerde decodes them) and the welfare feed
(bcl.welfare.status, `WelfareStatus` records), both applied by the evacuation-roster processor
(streams.evacuation_roster_processor) through `apply`; and what staff set: the criteria of their municipality, the
consent of a person, a telephone number (the register has none). The rules are domain.evacuation_roster's.

Tables (all CREATE IF NOT EXISTS, in the disaster store's database):
  roster_criteria  one row per municipality that set its own criteria (the others use DOMAIN §6.5's defaults);
  roster_people    one row per register record seen: what the list prints of it (name, birth date, sex, address,
                   household) and its last evaluation (reasons, of the elderly age, household size, the day);
  roster_welfare   the latest welfare status of each person (an older event than the held one is ignored);
  roster_history   every listing, unlisting and removal (a death or move-out), with its day: the removed stay here;
  roster_tasks     consent tasks (a reason gained), open until a consent decision is recorded or the person goes;
  roster_consents  every consent decision (given, refused, withdrawn) with its date; the latest one counts;
  roster_contacts  the telephone number staff entered.

The day: a person turns 75 without any event. Every evaluation takes the day; the processor evaluates the people a
batch touches on the day it runs, and `sweep` (the daily `bcl roster sweep`) evaluates a whole municipality on a
day, which is how the day's passing is noticed. Every read of personal data is audited (sinks.audit)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.dwellings import address_text
from domain.errors import BclError
from domain.evacuation_roster import (
    DEFAULT_CRITERIA,
    NO_WELFARE,
    ConsentDecision,
    Criterion,
    Listing,
    RosterCriteria,
    TaskCause,
    WelfareStatus,
    consent_label,
    criteria_from_dict,
    listing,
    reason_text,
    task_cause,
    welfare_status,
)
from domain.municipalities import municipality
from sinks.audit import record_access
from sinks.disaster_store import DisasterStore


class RosterError(BclError):
    pass


class UnknownRosterPersonError(RosterError, LookupError):
    pass


_TABLES = """
    CREATE TABLE IF NOT EXISTS roster_criteria (
        municipality_code TEXT PRIMARY KEY, criteria TEXT NOT NULL, set_by TEXT NOT NULL, set_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS roster_people (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, family_name TEXT NOT NULL,
        given_name TEXT NOT NULL, family_name_kana TEXT NOT NULL, given_name_kana TEXT NOT NULL,
        birth_date TEXT NOT NULL, sex TEXT NOT NULL, address TEXT NOT NULL, town TEXT NOT NULL,
        household_number TEXT NOT NULL, status TEXT NOT NULL, deletion_reason TEXT, deleted_on TEXT,
        reasons TEXT, elderly INTEGER, household_size INTEGER, evaluated_on TEXT, listed_since TEXT,
        PRIMARY KEY (municipality_code, resident_code)) WITHOUT ROWID;
    DROP INDEX IF EXISTS roster_people_household;
    CREATE INDEX IF NOT EXISTS roster_people_households ON roster_people
        (municipality_code, household_number, status, birth_date);
    CREATE TABLE IF NOT EXISTS roster_welfare (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, status TEXT NOT NULL,
        event_time INTEGER NOT NULL, PRIMARY KEY (municipality_code, resident_code)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS roster_history (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, day TEXT NOT NULL, change TEXT NOT NULL,
        reasons TEXT NOT NULL, detail TEXT);
    CREATE INDEX IF NOT EXISTS roster_history_person ON roster_history (municipality_code, resident_code);
    CREATE TABLE IF NOT EXISTS roster_tasks (
        task_id INTEGER PRIMARY KEY, municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL,
        cause TEXT NOT NULL, created_on TEXT NOT NULL, closed_on TEXT, outcome TEXT);
    CREATE INDEX IF NOT EXISTS roster_tasks_open ON roster_tasks (municipality_code, resident_code)
        WHERE closed_on IS NULL;
    CREATE TABLE IF NOT EXISTS roster_consents (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, decision TEXT NOT NULL, decided_on TEXT NOT NULL,
        recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS roster_consents_person ON roster_consents (municipality_code, resident_code);
    CREATE TABLE IF NOT EXISTS roster_contacts (
        municipality_code TEXT NOT NULL, resident_code TEXT NOT NULL, phone TEXT NOT NULL, entered_by TEXT NOT NULL,
        entered_at INTEGER NOT NULL, PRIMARY KEY (municipality_code, resident_code)) WITHOUT ROWID;
"""

_PERSON = ("family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex", "address", "town",
           "household_number", "status", "deletion_reason", "deleted_on")
REMOVALS = {"DEATH": "死亡", "MOVE_OUT": "転出", "EMIGRATION": "国外転出", "OTHER": "その他の消除"}
CSV_COLUMNS = ("住民票コード", "氏名", "ふりがな", "生年月日", "性別", "住所", "電話番号", "避難支援等を必要とする事由",
               "平常時の情報提供の同意", "同意の日付")
SEX_LABELS = {"MALE": "男", "FEMALE": "女", "NOT_APPLICABLE": "—"}


@dataclass(frozen=True)
class RosterPerson:
    """One listed person as the list shows them (the legal items of 49条の10 2項 and the consent)."""

    municipality_code: str
    resident_code: str
    name: str
    name_kana: str
    birth_date: dt.date
    sex: str
    address: str
    town: str
    phone: str | None
    reasons: tuple[Criterion, ...]
    reason_text: str
    listed_since: dt.date
    consent: ConsentDecision | None
    consent_on: dt.date | None

    def csv_row(self) -> list[str]:
        return [self.resident_code, self.name, self.name_kana, self.birth_date.isoformat(), SEX_LABELS[self.sex],
                self.address, self.phone or "", self.reason_text, consent_label(self.consent),
                self.consent_on.isoformat() if self.consent_on else ""]


@dataclass(frozen=True)
class ConsentTask:
    task_id: int
    municipality_code: str
    resident_code: str
    name: str
    cause: TaskCause
    created_on: dt.date
    closed_on: dt.date | None
    outcome: str | None


@dataclass(frozen=True)
class RosterChange:
    """One line of a person's roster history."""

    day: dt.date
    change: str  # LISTED, REASONS, UNLISTED, REMOVED
    reasons: tuple[Criterion, ...]
    detail: str | None


def _reasons(text: str | None) -> tuple[Criterion, ...]:
    return tuple(Criterion(r) for r in text.split(",")) if text else ()


def _text(reasons: Iterable[Criterion]) -> str:
    return ",".join(r.value for r in reasons)


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


class EvacuationRoster:
    def __init__(self, store: DisasterStore, audit_file: Path) -> None:
        self.store = store
        self._con = store.connection
        self.audit_file = audit_file
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- criteria ------------------------------------------------------------------------------

    def criteria(self, municipality_code: str) -> RosterCriteria:
        """The municipality's criteria (DOMAIN §6.5's defaults until it sets its own)."""
        municipality(municipality_code)
        row = self._con.execute("SELECT criteria FROM roster_criteria WHERE municipality_code=?",
                                (municipality_code,)).fetchone()
        return DEFAULT_CRITERIA if row is None else criteria_from_dict(json.loads(row[0]))

    def set_criteria(self, municipality_code: str, criteria: RosterCriteria, *, by: str, now: dt.datetime,
                     on: dt.date) -> int:
        """Store the municipality's criteria and evaluate its people again on `on`, in one transaction; returns how
        many people's listing changed."""
        municipality(municipality_code)
        with self.store.transaction():
            self._con.execute("INSERT OR REPLACE INTO roster_criteria VALUES (?, ?, ?, ?)",
                              (municipality_code, json.dumps(criteria.as_dict(), ensure_ascii=False), by, _ms(now)))
            return self._evaluate(municipality_code, self._all_codes(municipality_code), on)

    # -- the streams ---------------------------------------------------------------------------

    def apply(self, register_states: Sequence[Mapping[str, Any]], welfare: Sequence[Mapping[str, Any]],
              on: dt.date) -> int:
        """Apply register records (Resident) and welfare statuses (WelfareStatus, checked by the processor) in one
        transaction, and evaluate on `on` everyone they touch (the members of the households a person left or
        joined too); returns how many people's reasons to be listed changed (a first evaluation counts).
        Applying the same records again changes nothing."""
        touched: dict[str, set[str]] = {}
        latest = {(s["municipality_code"], s["resident_code"]): s for s in register_states}
        by_municipality: dict[str, list[Mapping[str, Any]]] = {}
        for state in latest.values():
            by_municipality.setdefault(state["municipality_code"], []).append(state)
        with self.store.transaction():
            # Set-based: the households the people were in before the batch, the records written, then the current
            # members of every household left or joined, a few queries per municipality and batch. The members are
            # read after every write of the batch: whoever left one of these households in the batch is touched as
            # a record of the batch itself.
            for code, states in by_municipality.items():
                people = touched.setdefault(code, set())
                people.update(s["resident_code"] for s in states)
                households = {s["household_number"] for s in states}
                households.update(h for (h,) in self._select_in(
                    "SELECT household_number FROM roster_people WHERE municipality_code=? AND resident_code IN ({})",
                    code, sorted(people)))
                self._upsert_people(states)
                people.update(r for (r,) in self._select_in(
                    "SELECT resident_code FROM roster_people WHERE municipality_code=? AND status='CURRENT' "
                    "AND household_number IN ({})", code, sorted(households)))
            for event in welfare:
                code, resident = event["municipality_code"], event["resident_code"]
                status = welfare_status(event)
                held = self._con.execute("SELECT event_time FROM roster_welfare WHERE municipality_code=? "
                                         "AND resident_code=?", (code, resident)).fetchone()
                at = _ms(event["event_time"])
                if held is not None and held[0] > at:
                    continue  # an older status than the one held: the latest wins, whatever the arrival order
                self._con.execute("INSERT OR REPLACE INTO roster_welfare VALUES (?, ?, ?, ?)",
                                  (code, resident, json.dumps(_status_dict(status)), at))
                touched.setdefault(code, set()).add(resident)
            return sum(self._evaluate(code, codes, on) for code, codes in touched.items())

    def sweep(self, municipality_code: str, on: dt.date) -> int:
        """Evaluate every person of the municipality on `on` (the daily run: who turned 75); how many changed."""
        municipality(municipality_code)
        with self.store.transaction():
            return self._evaluate(municipality_code, self._all_codes(municipality_code), on)

    def _upsert_people(self, states: Sequence[Mapping[str, Any]]) -> None:
        assignments = ", ".join(f"{c}=excluded.{c}" for c in _PERSON)
        self._con.executemany(
            f"INSERT INTO roster_people (municipality_code, resident_code, {', '.join(_PERSON)}) "
            f"VALUES (?, ?, {', '.join('?' * len(_PERSON))}) "
            f"ON CONFLICT (municipality_code, resident_code) DO UPDATE SET {assignments}",
            [(state["municipality_code"], state["resident_code"], state["family_name"], state["given_name"],
              state["family_name_kana"], state["given_name_kana"], state["birth_date"].isoformat(), state["sex"],
              address_text(state["address"]), state["address"]["town"], state["household_number"], state["status"],
              state.get("deletion_reason"), _iso(state.get("deleted_on"))) for state in states])

    def _all_codes(self, code: str) -> list[str]:
        return [r for (r,) in self._con.execute("SELECT resident_code FROM roster_people WHERE municipality_code=?",
                                                (code,))]

    def _select_in(self, query: str, code: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        """`query` (with `{}` for the IN list) for the municipality and the values, in parts of at most 500 (well
        below SQLite's limit of parameters)."""
        found: list[tuple[Any, ...]] = []
        for i in range(0, len(values), 500):
            part = values[i:i + 500]
            found += self._con.execute(query.format(", ".join("?" * len(part))), (code, *part)).fetchall()
        return found

    def _evaluate(self, code: str, residents: Iterable[str], on: dt.date) -> int:
        """Inside the caller's transaction: each person's listing on `on`, its history, tasks; how many changed."""
        criteria = self.criteria(code)
        wanted = sorted(set(residents))
        # Read in a few queries (the people, their households' members, their welfare), then decide in Python:
        # a sweep of a whole municipality writes only the people whose evaluation changed.
        rows = {r[0]: r[1:] for r in self._select_in(
            "SELECT resident_code, birth_date, household_number, status, deletion_reason, deleted_on, reasons, "
            "elderly, household_size, evaluated_on, listed_since FROM roster_people WHERE municipality_code=? "
            "AND resident_code IN ({})", code, wanted)}
        births: dict[str, list[dt.date]] = {}
        for household, birth in self._select_in(
                "SELECT household_number, birth_date FROM roster_people WHERE municipality_code=? "
                "AND status='CURRENT' AND household_number IN ({})", code,
                sorted({r[1] for r in rows.values() if r[2] == "CURRENT"})):
            births.setdefault(household, []).append(dt.date.fromisoformat(birth))
        welfare = {r: welfare_status(json.loads(s)) for r, s in self._select_in(
            "SELECT resident_code, status FROM roster_welfare WHERE municipality_code=? AND resident_code IN ({})",
            code, wanted)}
        changed = 0
        for resident in wanted:
            row = rows.get(resident)
            if row is None:
                continue
            birth, household, status, deletion, deleted_on, reasons, elderly, size, evaluated_on, since = row
            before = None if evaluated_on is None else Listing(_reasons(reasons), bool(elderly), size)
            if status == "CURRENT":
                after = listing(criteria, welfare.get(resident, NO_WELFARE), dt.date.fromisoformat(birth),
                                births[household], on)
            else:
                after = Listing((), False, 0)
            if before == after:
                continue
            if before is None or before.reasons != after.reasons:
                changed += 1
            listed_since = since
            if after.listed and not (before and before.listed):
                listed_since = on.isoformat()
                self._history(code, resident, on, "LISTED", after.reasons)
            elif after.listed:
                self._history(code, resident, on, "REASONS", after.reasons)
            elif before is not None and before.listed:
                listed_since = None
                removed = status != "CURRENT"
                self._history(code, resident, dt.date.fromisoformat(deleted_on) if removed and deleted_on else on,
                              "REMOVED" if removed else "UNLISTED", before.reasons,
                              REMOVALS.get(deletion or "") if removed else None)
            if status != "CURRENT" or not after.listed:
                self._con.execute("UPDATE roster_tasks SET closed_on=?, outcome=? WHERE municipality_code=? "
                                  "AND resident_code=? AND closed_on IS NULL",
                                  (on.isoformat(), "REMOVED" if status != "CURRENT" else "UNLISTED", code, resident))
            cause = task_cause(before, after)
            if cause is not None and self._con.execute(
                    "SELECT 1 FROM roster_tasks WHERE municipality_code=? AND resident_code=? AND cause=? "
                    "AND closed_on IS NULL", (code, resident, cause.value)).fetchone() is None:
                self._con.execute("INSERT INTO roster_tasks (municipality_code, resident_code, cause, created_on) "
                                  "VALUES (?, ?, ?, ?)", (code, resident, cause.value, on.isoformat()))
            self._con.execute("UPDATE roster_people SET reasons=?, elderly=?, household_size=?, evaluated_on=?, "
                              "listed_since=? WHERE municipality_code=? AND resident_code=?",
                              (_text(after.reasons), int(after.elderly), after.household_size, on.isoformat(),
                               listed_since, code, resident))
        return changed

    def _history(self, code: str, resident: str, day: dt.date, change: str, reasons: Iterable[Criterion],
                 detail: str | None = None) -> None:
        self._con.execute("INSERT INTO roster_history VALUES (?, ?, ?, ?, ?, ?)",
                          (code, resident, day.isoformat(), change, _text(reasons), detail))

    # -- what staff enter ----------------------------------------------------------------------

    def record_consent(self, municipality_code: str, resident_code: str, decision: ConsentDecision, on: dt.date,
                       *, by: str, now: dt.datetime) -> RosterPerson:
        """Record a consent decision of a listed person with its date, closing their open consent tasks."""
        with self.store.transaction():
            self._listed_row(municipality_code, resident_code)
            self._con.execute("INSERT INTO roster_consents VALUES (?, ?, ?, ?, ?, ?)",
                              (municipality_code, resident_code, decision.value, on.isoformat(), by, _ms(now)))
            self._con.execute("UPDATE roster_tasks SET closed_on=?, outcome=? WHERE municipality_code=? "
                              "AND resident_code=? AND closed_on IS NULL",
                              (on.isoformat(), f"CONSENT_{decision.value}", municipality_code, resident_code))
        return self._people(municipality_code, resident_code=resident_code)[0]

    def set_phone(self, municipality_code: str, resident_code: str, phone: str, *, by: str,
                  now: dt.datetime) -> None:
        """The telephone number staff entered (電話番号, a legal item the register does not hold)."""
        with self.store.transaction():
            self._listed_row(municipality_code, resident_code)
            self._con.execute("INSERT OR REPLACE INTO roster_contacts VALUES (?, ?, ?, ?, ?)",
                              (municipality_code, resident_code, phone, by, _ms(now)))

    def require_listed(self, municipality_code: str, resident_code: str) -> None:
        """Nothing when the person is on the municipality's list, else UnknownRosterPersonError (for what staff
        enter of a listed person: consent, phone, the individual plan)."""
        self._listed_row(municipality_code, resident_code)

    def person(self, municipality_code: str, resident_code: str, *, actor: str | None = None,
               action: str = "roster.person") -> RosterPerson:
        """One listed person (UnknownRosterPersonError if not listed). Audited."""
        self._listed_row(municipality_code, resident_code)
        [person] = self._people(municipality_code, resident_code=resident_code)
        record_access(self.audit_file, action, municipality_code, 1, actor=actor, resident_code=resident_code)
        return person

    def _listed_row(self, municipality_code: str, resident_code: str) -> None:
        municipality(municipality_code)
        row = self._con.execute("SELECT listed_since FROM roster_people WHERE municipality_code=? AND resident_code=? "
                                "AND status='CURRENT'", (municipality_code, resident_code)).fetchone()
        if row is None or row[0] is None:
            raise UnknownRosterPersonError(f"resident {resident_code} is not on the list of {municipality_code} "
                                           "(`bcl roster list` shows who is)")

    # -- reads (audited) -----------------------------------------------------------------------

    def listed(self, municipality_code: str, *, actor: str | None = None, town: str | None = None,
               criterion: Criterion | None = None, consent: bool | None = None, name: str | None = None,
               action: str = "roster.list") -> list[RosterPerson]:
        """The listed people of a municipality, by kana: optionally of a town, meeting a criterion, with (True) or
        without (False) consent to share in normal times, or whose name or reading contains `name`. Audited."""
        municipality(municipality_code)
        people = [p for p in self._people(municipality_code)
                  if (town is None or p.town == town) and (criterion is None or criterion in p.reasons)
                  and (consent is None or (p.consent is ConsentDecision.GIVEN) == consent)
                  and (name is None or name in p.name.replace("\u3000", "") or name in p.name_kana
                       or name in p.name)]
        record_access(self.audit_file, action, municipality_code, len(people), actor=actor,
                      filters={"town": town, "criterion": criterion.value if criterion else None, "consent": consent,
                               "name": None if name is None else "given"})
        return people

    def tasks(self, municipality_code: str, *, actor: str | None = None, open_only: bool = True) -> list[ConsentTask]:
        """Consent tasks of the municipality (the open ones by default), oldest first. Audited."""
        municipality(municipality_code)
        rows = self._con.execute(
            "SELECT t.task_id, t.resident_code, p.family_name, p.given_name, t.cause, t.created_on, t.closed_on, "
            "t.outcome FROM roster_tasks t JOIN roster_people p USING (municipality_code, resident_code) "
            f"WHERE t.municipality_code=? {'AND t.closed_on IS NULL' if open_only else ''} ORDER BY t.task_id",
            (municipality_code,)).fetchall()
        tasks = [ConsentTask(i, municipality_code, r, f"{f}\u3000{g}", TaskCause(c), dt.date.fromisoformat(created),
                             dt.date.fromisoformat(closed) if closed else None, outcome)
                 for i, r, f, g, c, created, closed, outcome in rows]
        record_access(self.audit_file, "roster.tasks", municipality_code, len(tasks), actor=actor)
        return tasks

    def history(self, municipality_code: str, resident_code: str, *, actor: str | None = None) -> list[RosterChange]:
        """A person's listings and removals (the removed are kept here, not on the list). Audited."""
        municipality(municipality_code)
        rows = self._con.execute("SELECT day, change, reasons, detail FROM roster_history WHERE municipality_code=? "
                                 "AND resident_code=? ORDER BY rowid", (municipality_code, resident_code)).fetchall()
        record_access(self.audit_file, "roster.history", municipality_code, 1 if rows else 0, actor=actor)
        return [RosterChange(dt.date.fromisoformat(d), c, _reasons(r), x) for d, c, r, x in rows]

    def csv_export(self, people: Sequence[RosterPerson]) -> str:
        """The people as CSV (UTF-8 text; the header names the legal items in Japanese)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(p.csv_row() for p in people)
        return out.getvalue()

    def _people(self, municipality_code: str, resident_code: str | None = None) -> list[RosterPerson]:
        criteria = self.criteria(municipality_code)
        rows = self._con.execute(
            "SELECT p.resident_code, p.family_name, p.given_name, p.family_name_kana, p.given_name_kana, p.birth_date, "
            "p.sex, p.address, p.town, c.phone, p.reasons, p.household_size, p.listed_since, w.status, "
            "(SELECT decision || ' ' || decided_on FROM roster_consents k "
            " WHERE k.municipality_code=p.municipality_code AND k.resident_code=p.resident_code "
            " ORDER BY decided_on DESC, recorded_at DESC, rowid DESC LIMIT 1) "
            "FROM roster_people p LEFT JOIN roster_contacts c USING (municipality_code, resident_code) "
            "LEFT JOIN roster_welfare w USING (municipality_code, resident_code) "
            "WHERE p.municipality_code=? AND p.status='CURRENT' AND p.listed_since IS NOT NULL"
            + ("" if resident_code is None else " AND p.resident_code=?")
            + " ORDER BY p.family_name_kana, p.given_name_kana, p.resident_code",
            (municipality_code,) if resident_code is None else (municipality_code, resident_code)).fetchall()
        people = []
        for (resident, family, given, family_kana, given_kana, birth, sex, address, town, phone, reasons, size, since,
             welfare, consent) in rows:
            held = NO_WELFARE if welfare is None else welfare_status(json.loads(welfare))
            decision, decided_on = consent.split(" ") if consent else (None, None)
            criteria_met = _reasons(reasons)
            people.append(RosterPerson(
                municipality_code, resident, f"{family}\u3000{given}", f"{family_kana}\u3000{given_kana}",
                dt.date.fromisoformat(birth), sex, address, town, phone, criteria_met,
                reason_text(criteria_met, held, size, criteria), dt.date.fromisoformat(since),
                ConsentDecision(decision) if decision else None,
                dt.date.fromisoformat(decided_on) if decided_on else None))
        return people


def _status_dict(status: WelfareStatus) -> dict[str, Any]:
    return {"care_level": status.care_level.value if status.care_level else None,
            "physical_grade": status.physical_grade,
            "intellectual_grade": status.intellectual_grade.value if status.intellectual_grade else None,
            "mental_grade": status.mental_grade, "intractable_disease": status.intractable_disease,
            "living_at_home": status.living_at_home}


