"""Each household's support money of a disaster (docs/domain.md §6.4): the amount applied for of each accepted
application of the four support procedures, and each payment, on the disaster store's database.

Tables, keyed by (disaster_id, municipality_code, household_number) like the rest of what staff enter, never by a
ledger row (register updates and re-builds replace those):
  support_amounts         the current amount of each accepted application: what the rule of domain.support_payments
                          gave from the dwelling's level and the household's size at the time it was recorded, and
                          what was stated (the statement, kept so that the page can show what the current level
                          would give after a re-survey);
  support_amount_history  every recording of an amount (old and new amount, statement, who, when);
  support_payments        each payment: amount, the day paid, the staff member, the reference (unique within the
                          municipality's ledger, so that a payment entered twice is refused), when recorded.

Each change is one transaction (the checks run inside it, so two payments entered at once cannot together exceed
the amount granted). No outbox event: no other process acts on the amounts or payments (the certificate worker
reads the level, the mailer the applications); the disaster store's file is their durable record."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.damage_levels import DamageLevel
from domain.disaster_applications import PROCEDURE_NAMES, ApplicationStatus, Procedure
from domain.japan_time import japan_date
from domain.support_payments import (
    PER_HOUSEHOLD,
    SUPPORT_PROCEDURES,
    Statement,
    SupportAmount,
    SupportError,
    check_amount_change,
    check_payment,
    current_amount,
    paid_on_date,
    payment_reference,
    staff_name,
    support_amount,
    support_procedure,
)
from sinks.damage_assessment import DamageAssessment
from sinks.disaster_applications import DisasterApplications
from sinks.disaster_ledger import DisasterLedger
from sinks.disaster_store import DisasterStore

_TABLES = """
    CREATE TABLE IF NOT EXISTS support_amounts (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, household_number TEXT NOT NULL,
        procedure TEXT NOT NULL, application_id TEXT NOT NULL, dwelling_id TEXT, level TEXT,
        household_size INTEGER NOT NULL, statement TEXT NOT NULL, amount INTEGER NOT NULL, basis TEXT NOT NULL,
        recorded_by TEXT NOT NULL, recorded_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, household_number, procedure, application_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS support_amount_history (
        change INTEGER PRIMARY KEY, disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL,
        household_number TEXT NOT NULL, procedure TEXT NOT NULL, application_id TEXT NOT NULL, level TEXT,
        statement TEXT NOT NULL, old_amount INTEGER, amount INTEGER NOT NULL, recorded_by TEXT NOT NULL,
        recorded_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS support_payments (
        disaster_id TEXT NOT NULL, municipality_code TEXT NOT NULL, reference TEXT NOT NULL,
        household_number TEXT NOT NULL, procedure TEXT NOT NULL, amount INTEGER NOT NULL, paid_on TEXT NOT NULL,
        paid_by TEXT NOT NULL, recorded_at INTEGER NOT NULL,
        PRIMARY KEY (disaster_id, municipality_code, reference)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS support_payments_household
        ON support_payments (disaster_id, municipality_code, household_number, procedure);
"""


@dataclass(frozen=True)
class AppliedAmount:
    """The amount of one accepted application, and what the dwelling's current level would give."""

    application_id: str
    procedure: Procedure
    amount: int
    basis: str
    level: DamageLevel | None  # when recorded
    household_size: int
    statement: Statement
    recorded_by: str
    recorded_at: dt.datetime
    current: SupportAmount | None  # at the current level (None: nothing, e.g. no longer assessed)

    @property
    def changed_since(self) -> bool:
        """The level changed after the amount was applied for, and the current level gives another amount."""
        return self.current is None or self.current.amount != self.amount


@dataclass(frozen=True)
class Payment:
    reference: str
    procedure: Procedure
    amount: int
    paid_on: dt.date
    paid_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True)
class AmountChange:
    application_id: str
    procedure: Procedure
    old_amount: int | None
    amount: int
    level: DamageLevel | None
    statement: Statement
    recorded_by: str
    recorded_at: dt.datetime


@dataclass(frozen=True)
class ProcedureSupport:
    """One procedure of a household: applied for (the sum of its accepted applications' amounts), paid,
    outstanding."""

    procedure: Procedure
    amounts: list[AppliedAmount]
    payments: list[Payment]

    @property
    def applied(self) -> int:
        return sum(a.amount for a in self.amounts)

    @property
    def paid(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def outstanding(self) -> int:
        return self.applied - self.paid


@dataclass(frozen=True)
class HouseholdSupport:
    municipality_code: str
    household_number: str
    procedures: list[ProcedureSupport]  # the procedures with an amount, in SUPPORT_PROCEDURES order
    history: list[AmountChange] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        return {"applied": sum(p.applied for p in self.procedures), "paid": sum(p.paid for p in self.procedures),
                "outstanding": sum(p.outstanding for p in self.procedures)}


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def _instant(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _level(code: str | None) -> DamageLevel | None:
    return None if code is None else DamageLevel(code)


def ledger_totals(households: Iterable[HouseholdSupport]) -> dict[str, dict[str, int]]:
    """Per procedure (and "total"): households, applied for, paid, outstanding."""
    totals: dict[str, dict[str, int]] = {}
    for h in households:
        for p in h.procedures:
            for key in (p.procedure.value, "total"):
                t = totals.setdefault(key, {"households": 0, "applied": 0, "paid": 0, "outstanding": 0})
                t["applied"] += p.applied
                t["paid"] += p.paid
                t["outstanding"] += p.outstanding
            totals[p.procedure.value]["households"] += 1
        if h.procedures:
            totals["total"]["households"] += 1
    return totals


class SupportPayments:
    """The support amounts and payments, over the disaster store's connection; reads the ledger, the damage
    assessment and the applications through their own classes."""

    def __init__(self, store: DisasterStore, ledger: DisasterLedger, assessment: DamageAssessment,
                 applications: DisasterApplications) -> None:
        self.store = store
        self._ledger = ledger
        self._assessment = assessment
        self._applications = applications
        self._con = store.connection
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- changing --------------------------------------------------------------------------------

    def record_amount(self, application_id: str, statement: Statement, staff: str,
                      now: dt.datetime) -> AppliedAmount:
        """The amount applied for of an accepted application: the rule's answer from the dwelling's current
        level, the household's size at 発災日時 and the statement; one transaction with its history row."""
        staff = staff_name(staff)
        known = self._applications.application(application_id)
        # The household's size at 発災日時 is read before the write lock is taken (a municipality's whole ledger:
        # seconds at a million residents); the base changes only when the ledger is built again.
        size = (self._household_size(known.disaster_id, known.municipality_code, known.household_number)
                if known.municipality_code and known.household_number else 0)
        with self.store.transaction():
            application = self._applications.application(application_id)
            proc = support_procedure(application.procedure)
            if application.status is not ApplicationStatus.ACCEPTED:
                raise SupportError(f"application {application_id} is {application.status.lower()}: only an accepted "
                                   "application has an amount")
            if application.household_number is None or application.municipality_code is None:
                raise SupportError(f"application {application_id} did not match a household of the ledger")
            code, number = application.municipality_code, application.household_number
            key = (application.disaster_id, code, number)
            if proc in PER_HOUSEHOLD:
                other = self._con.execute(
                    "SELECT application_id FROM support_amounts WHERE disaster_id=? AND municipality_code=? AND "
                    "household_number=? AND procedure=? AND application_id!=?",
                    (*key, proc.value, application_id)).fetchone()
                if other is not None:
                    raise SupportError(f"{PROCEDURE_NAMES[proc]} is paid once per household: household {number} "
                                       f"has its amount from application {other[0]}")
            level = self._level(application.disaster_id, application.dwelling_id)
            amount = support_amount(proc, statement, level, size)
            old = self._con.execute(
                "SELECT amount FROM support_amounts WHERE disaster_id=? AND municipality_code=? AND household_number=? "
                "AND procedure=? AND application_id=?", (*key, proc.value, application_id)).fetchone()
            # The payments are the household's for the procedure (the condolence money of several applications
            # shares them): what all its applications grant with the new amount must cover what was paid.
            others = self._applied(*key, proc) - (0 if old is None else old[0])
            check_amount_change(proc, others + amount.amount, self._paid(*key, proc))
            row = (*key, proc.value, application_id, application.dwelling_id, None if level is None else level.value,
                   size, statement.to_json(), amount.amount, amount.basis, staff, _ms(now))
            self._con.execute("INSERT OR REPLACE INTO support_amounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              row)
            self._con.execute(
                "INSERT INTO support_amount_history (disaster_id, municipality_code, household_number, procedure, "
                "application_id, level, statement, old_amount, amount, recorded_by, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, proc.value, application_id, row[6], row[8], None if old is None else old[0], amount.amount,
                 staff, _ms(now)))
        return next(a for p in self.recorded(*key).procedures for a in p.amounts if a.application_id == application_id)

    def pay(self, disaster_id: str, municipality_code: str, household_number: str, procedure: Procedure | str, *,
            amount: int, paid_on: dt.date, staff: str, reference: str, now: dt.datetime) -> Payment:
        """A payment to a household of what it was granted of a procedure, in one transaction: refused (nothing
        written) for an unknown household, a procedure without an accepted application's amount, an amount of
        0 or less, or one that would bring the paid total above the amount granted; a reference used before."""
        proc = support_procedure(procedure)
        staff = staff_name(staff)
        reference = payment_reference(reference)
        paid_on = paid_on_date(paid_on, japan_date(now))
        key = (disaster_id, municipality_code, household_number)
        with self.store.transaction():
            if not self._con.execute("SELECT 1 FROM support_amounts WHERE disaster_id=? AND municipality_code=? AND "
                                     "household_number=? AND procedure=?", (*key, proc.value)).fetchone():
                # Only a refusal reads the ledger: an amount recorded means the household is in it.
                self._household_size(*key)  # an unknown disaster, ledger or household ends here
                accepted = [a for a in self._applications.applications(disaster_id, municipality_code,
                                                                       ApplicationStatus.ACCEPTED)
                            if a.household_number == household_number and a.procedure is proc]
                if accepted:
                    raise SupportError(f"{PROCEDURE_NAMES[proc]} of household {household_number}: the amount of "
                                       f"application {accepted[0].application_id} is not recorded yet "
                                       f"(`bcl disaster support record-amount {accepted[0].application_id}`)")
                raise SupportError(f"household {household_number} has no accepted application for "
                                   f"{PROCEDURE_NAMES[proc]}: nothing to pay")
            check_payment(proc, amount, self._applied(*key, proc), self._paid(*key, proc))
            earlier = self._con.execute("SELECT household_number, paid_on, paid_by FROM support_payments WHERE "
                                        "disaster_id=? AND municipality_code=? AND reference=?",
                                        (disaster_id, municipality_code, reference)).fetchone()
            if earlier is not None:
                raise SupportError(f"payment {reference!r} was already recorded (household {earlier[0]}, paid "
                                   f"{earlier[1]}, by {earlier[2]})")
            self._con.execute("INSERT INTO support_payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (disaster_id, municipality_code, reference, household_number, proc.value, amount,
                               paid_on.isoformat(), staff, _ms(now)))
        return Payment(reference, proc, amount, paid_on, staff, now)

    # -- reading ---------------------------------------------------------------------------------

    def household(self, disaster_id: str, municipality_code: str, household_number: str) -> HouseholdSupport:
        """A household's amounts (with the current level's), payments and history; an unknown one refused."""
        self._household_size(disaster_id, municipality_code, household_number)
        return self.recorded(disaster_id, municipality_code, household_number)

    def recorded(self, disaster_id: str, municipality_code: str, household_number: str) -> HouseholdSupport:
        """What is recorded of a household the caller found in the ledger (the staff page has read it)."""
        found = self._households(disaster_id, municipality_code, household_number)
        return found[0] if found else HouseholdSupport(municipality_code, household_number, [])

    def households(self, disaster_id: str, municipality_code: str) -> list[HouseholdSupport]:
        """The households of a municipality's ledger with any amount recorded, by household number."""
        self._ledger.ledger_build(disaster_id, municipality_code)  # NoLedgerError for a ledger not built
        return self._households(disaster_id, municipality_code, None)

    def _households(self, disaster_id: str, code: str, number: str | None) -> list[HouseholdSupport]:
        # The current levels: of the whole disaster for a municipality's households, of the dwelling for one.
        levels: dict[str | None, DamageLevel | None] = (
            {a.dwelling_id: a.level for a in self._assessment.assessments(disaster_id)} if number is None else {})

        def level_of(dwelling: str | None) -> DamageLevel | None:
            if number is not None and dwelling not in levels:
                levels[dwelling] = self._level(disaster_id, dwelling)
            return levels.get(dwelling)

        where = "disaster_id=?1 AND municipality_code=?2 AND (?3 IS NULL OR household_number=?3)"
        args = (disaster_id, code, number)
        amounts: dict[str, dict[Procedure, list[AppliedAmount]]] = defaultdict(lambda: defaultdict(list))
        for (h, proc, app, dwelling, level, size, statement, amount, basis, by, at) in self._con.execute(
                "SELECT household_number, procedure, application_id, dwelling_id, level, household_size, statement, "
                f"amount, basis, recorded_by, recorded_at FROM support_amounts WHERE {where} "
                "ORDER BY household_number, recorded_at", args):
            said = Statement.from_json(statement)
            p = Procedure(proc)
            amounts[h][p].append(AppliedAmount(app, p, amount, basis, _level(level), size, said, by, _instant(at),
                                               current_amount(p, said, level_of(dwelling), size)))
        payments: dict[str, dict[Procedure, list[Payment]]] = defaultdict(lambda: defaultdict(list))
        for h, proc, ref, amount, on, by, at in self._con.execute(
                f"SELECT household_number, procedure, reference, amount, paid_on, paid_by, recorded_at "
                f"FROM support_payments WHERE {where} ORDER BY paid_on, recorded_at", args):
            payments[h][Procedure(proc)].append(Payment(ref, Procedure(proc), amount, dt.date.fromisoformat(on), by,
                                                        _instant(at)))
        history: dict[str, list[AmountChange]] = defaultdict(list)
        for h, app, proc, level, statement, old, amount, by, at in self._con.execute(
                "SELECT household_number, application_id, procedure, level, statement, old_amount, amount, "
                f"recorded_by, recorded_at FROM support_amount_history WHERE {where} ORDER BY change", args):
            history[h].append(AmountChange(app, Procedure(proc), old, amount, _level(level),
                                           Statement.from_json(statement), by, _instant(at)))
        return [HouseholdSupport(code, h, [ProcedureSupport(p, amounts[h][p], payments[h][p])
                                           for p in SUPPORT_PROCEDURES if p in amounts[h]], history[h])
                for h in sorted(amounts)]

    def _household_size(self, disaster_id: str, code: str, number: str) -> int:
        """The people of the household at 発災日時 (the ledger's base rows), or SupportError for none."""
        size = sum(1 for r in self._ledger.residents(disaster_id, code) if r["in_base"] and
                   r["household_number"] == number)
        if size == 0:
            raise SupportError(f"no household {number!r} in the ledger of {code} for disaster {disaster_id}")
        return size

    def _level(self, disaster_id: str, dwelling_id: str | None) -> DamageLevel | None:
        if dwelling_id is None:
            return None
        found = self._assessment.assessments(disaster_id, dwelling_id)
        return found[0].level if found else None

    def _applied(self, disaster_id: str, code: str, number: str, proc: Procedure) -> int:
        (total,) = self._con.execute("SELECT coalesce(sum(amount), 0) FROM support_amounts WHERE disaster_id=? AND "
                                     "municipality_code=? AND household_number=? AND procedure=?",
                                     (disaster_id, code, number, proc.value)).fetchone()
        return int(total)

    def _paid(self, disaster_id: str, code: str, number: str, proc: Procedure) -> int:
        (total,) = self._con.execute("SELECT coalesce(sum(amount), 0) FROM support_payments WHERE disaster_id=? AND "
                                     "municipality_code=? AND household_number=? AND procedure=?",
                                     (disaster_id, code, number, proc.value)).fetchone()
        return int(total)
