"""The day-by-day change simulator of a municipality's register: the full load, then the
differences (異動) of docs/domain.md §2.3 as ResidentChange dicts (fields of resident_change.avsc).

Time. The full load happens at `start`; simulated day d is the calendar day start's Japan date + d.
Notifications handled at the counter (moves, household and name changes, seals, cards) happen on
office days during office hours (domain.office_hours: not on weekends, national holidays or in the
year-end break); births and deaths are accepted at any hour
(the night counter, 時間外受付). The tax assessment is processed on the first working days of June.
Every event of day d is sent in that day's batch: `sent_at` is the end of the day, 24:00 Japan time.
Event times are whole milliseconds (the Avro type is timestamp-millis), in UTC.

Order. Within a municipality events have non-decreasing event times in sequence order, so "the
events up to an instant" is always a prefix of the sequence. A change that touches several records
(a household moving, a head of household dying) emits one event per record at the same instant.

Determinism. Day d draws from a generator seeded by (seed, municipality, d) and starts from the
state at the end of day d - 1, which the simulator replays from the full load when needed
(it keeps the initial state and the latest state reached). So a run of days 1..7 equals runs of
days 1..3 and 4..7, event for event.

Rates are per 1,000 residents per year (ChangeRates); an ordinary working day changes about
0.05 % of the residents, moves dominate, and March and April see two to three times as many moves.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from domain.japan_time import JST, start_of_day
from domain.office_hours import is_office_day
from streams.register import welfare
from streams.register.errors import RegisterError
from streams.register.households import FEMALE, HEAD, MALE, compose, pick
from streams.register.office_calendar import OFFICE_DAY_MS, OFFICE_OPENS_MS, tax_assessment_days
from streams.register.reference import Municipality, PersonName, ReferenceData
from streams.register.synthetic import (
    ADULT_AGE,
    DAYS_PER_YEAR,
    FOREIGN_HOUSEHOLD_SHARE,
    TAX_YEARS_KEPT,
    Record,
    SyntheticRegister,
    build_register,
    card_certificate,
    full_name,
    income_median_and_spread,
    resident_record,
    seal_registration,
    tax_record,
)

Event = dict[str, Any]

DAY_MS = 24 * 3600 * 1000
WORKING_DAYS_PER_YEAR = 243.0  # office days: 365 less weekends, ~16 weekday national holidays, the year-end break
# Moves by month (January first): the fiscal and school year start in April.
MOVE_SEASON = (0.8, 0.9, 2.8, 2.3, 0.9, 0.85, 0.9, 0.85, 0.9, 0.85, 0.8, 0.8)
# Renewal: 60 % of card certificates are renewed, at some point of their last 60 days of validity.
RENEWAL_WINDOW_DAYS = 60
RENEWAL_PERCENT = 60
MOVER_HOUSEHOLD_SIZES = (1, 2, 3, 4, 5)
MOVER_HOUSEHOLD_WEIGHTS = (0.55, 0.22, 0.11, 0.09, 0.03)
# Gompertz mortality: the hazard grows by about 10 % per year of age; 100-year-olds are accepted always.
MORTALITY_SLOPE = 0.095
MORTALITY_REFERENCE_AGE = 100.0
EVENT_NAMESPACE = uuid.UUID("5b0e2a36-8f0c-4e55-9d0a-4f1b2b8f6c11")
MAX_TRIES = 4000


@dataclass(frozen=True)
class ChangeRates:
    """Events per 1,000 residents per year. Office events count actions (a moving household is one)."""

    birth: float = 6.3
    death: float = 12.9
    move_in: float = 27.0
    move_out: float = 28.0
    move_within: float = 20.0
    marriage: float = 2.0
    separation: float = 0.8
    name_change: float = 0.3
    seal_registered: float = 12.0
    seal_abolished: float = 3.0
    card_issued: float = 18.0
    card_revoked: float = 2.0
    record_removed: float = 0.02


# The office actions in a fixed order (it breaks ties between actions at the same millisecond).
_OFFICE_ACTIONS = (
    "move_in", "move_out", "move_within", "marriage", "separation", "name_change",
    "seal_registered", "seal_abolished", "card_issued", "card_revoked", "record_removed",
)
_MOVES = frozenset({"move_in", "move_out", "move_within"})


@dataclass
class _State:
    """Everything that carries over from one simulated day to the next."""

    records: dict[str, Record]
    current: list[str]
    position: dict[str, int]
    households: dict[str, list[str]]
    # day (ordinal) a card certificate is due to be renewed -> resident codes
    renewals: dict[int, list[str]]
    renewal_cursor: int
    next_resident: int
    next_household: int
    next_seal: int
    next_certificate: int
    sequence: int

    def copy(self) -> _State:
        return replace(
            self,
            records=dict(self.records),
            current=list(self.current),
            position=dict(self.position),
            households={k: list(v) for k, v in self.households.items()},
            renewals={k: list(v) for k, v in self.renewals.items()},
        )

    def add_current(self, code: str) -> None:
        self.position[code] = len(self.current)
        self.current.append(code)

    def remove_current(self, code: str) -> None:
        i = self.position.pop(code)
        last = self.current.pop()
        if last != code:
            self.current[i] = last
            self.position[last] = i


@dataclass
class _Day:
    """One simulated day: its date, its random generator and where its events go."""

    number: int
    date: date
    rng: np.random.Generator
    midnight: datetime
    sent_at: datetime
    events: list[Event] = field(default_factory=list)

    def u(self) -> float:
        return float(self.rng.random())


def _age(record: Record, on: date) -> float:
    return (on.toordinal() - record["birth_date"].toordinal()) / DAYS_PER_YEAR


def _name(record: Record) -> str:
    return full_name(record["family_name"], record["given_name"])


def _sibling(sex: str, older: bool) -> str:
    return {(MALE, True): "兄", (FEMALE, True): "姉", (MALE, False): "弟", (FEMALE, False): "妹"}[(sex, older)]


class RegisterSimulator:
    """A municipality's synthetic register and its changes (see the module docstring).

    `start` is the instant of the full load (timezone-aware); `population` overrides the real one;
    `font_path` is the font of the seal impressions (Settings.mincho_font).
    """

    def __init__(
        self,
        reference: ReferenceData,
        municipality_code: str,
        *,
        population: int | None = None,
        seed: int,
        start: datetime,
        font_path: Path,
        rates: ChangeRates | None = None,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise RegisterError(f"the start of the simulation must be timezone-aware, got {start.isoformat()}")
        self._reference = reference
        self.municipality: Municipality = reference.municipality(municipality_code)
        self._population = population
        self._seed = seed
        self.start = start.astimezone(UTC).replace(microsecond=start.microsecond // 1000 * 1000)
        self.as_of: date = self.start.astimezone(JST).date()
        self._font_path = Path(font_path)
        self.rates = rates or ChangeRates()
        self._register: SyntheticRegister | None = None
        # Saved states by day number (end of that day): the initial one and the latest reached.
        self._checkpoints: dict[int, _State] = {}

    # --- public interface ----------------------------------------------------------------------
    @property
    def register(self) -> SyntheticRegister:
        """The initial register (built on first use)."""
        if self._register is None:
            self._register = build_register(
                self._reference, self.municipality.code, seed=self._seed, as_of=self.as_of,
                font_path=self._font_path, population=self._population,
            )
        return self._register

    def full_load(self) -> Iterator[Event]:
        """The initial load: one FULL_LOAD event per record, sequence 1..N, all at `start`."""
        for sequence, record in enumerate(self.register.records, start=1):
            yield self._event(sequence, record["resident_code"], "FULL_LOAD", self.start, self.start, record)

    def changes(self, days: int, from_day: int = 1) -> Iterator[Event]:
        """The events of days from_day .. from_day + days - 1, in sequence order."""
        if from_day < 1 or days < 0:
            raise RegisterError(f"simulated days start at 1 and cannot be negative: from_day={from_day} days={days}")
        state = self._state_after(from_day - 1)
        for number in range(from_day, from_day + days):
            yield from self._simulate_day(state, number)
        self._keep(from_day + days - 1, state)

    def welfare_full_load(self) -> Iterator[Event]:
        """The welfare systems' initial load (WelfareStatus events, streams.register.welfare): one per person of
        the initial register who has a status, all at `start`."""
        for code, status in welfare.initial_statuses(self.register.records, self._seed, self.municipality.code,
                                                     self.as_of).items():
            yield welfare.welfare_event(self._seed, self.municipality.code, code, self.start, status, f"0/{code}")

    def welfare_changes(self, days: int, from_day: int = 1) -> Iterator[Event]:
        """The welfare changes of days from_day .. from_day + days - 1, in time order. They depend on every earlier
        day, which is replayed (register and welfare) from the full load."""
        if from_day < 1 or days < 0:
            raise RegisterError(f"simulated days start at 1 and cannot be negative: from_day={from_day} days={days}")
        initial = welfare.initial_statuses(self.register.records, self._seed, self.municipality.code, self.as_of)
        state = self._state_after(0)

        def register_days() -> Iterator[tuple[int, date, dict[str, Record], list[str]]]:
            for number in range(1, from_day + days):
                for _ in self._simulate_day(state, number):
                    pass
                yield number, self.as_of + timedelta(days=number), state.records, state.current

        yield from welfare.replay(initial, register_days(), self._seed, self.municipality.code, from_day)

    def register_at(self, instant: datetime) -> dict[str, Record]:
        """The register as the events up to `instant` leave it: every record's latest after-image
        (deleted records included, removed records not), by resident code."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise RegisterError(f"the instant must be timezone-aware, got {instant.isoformat()}")
        if instant < self.start:
            return {}
        day = (instant.astimezone(JST).date() - self.as_of).days
        if day == 0:
            return {r["resident_code"]: r for r in self.register.records}
        state = self._state_after(day - 1)
        result = dict(state.records)
        for event in self._simulate_day(state, day):
            if event["event_time"] > instant:
                break
            if event["after"] is None:
                result.pop(event["resident_code"], None)
            else:
                result[event["resident_code"]] = event["after"]
        return result

    # --- replay ------------------------------------------------------------------------------------
    def _initial_state(self) -> _State:
        reg = self.register
        records = {r["resident_code"]: r for r in reg.records}
        renewals: dict[int, list[str]] = {}
        after = self.as_of.toordinal()
        for code, r in records.items():
            for cert in r["jpki_certificates"]:
                due = _renewal_day(cert, after) if cert["kind"] == "CARD" else None
                if due is not None:
                    renewals.setdefault(due, []).append(code)
        return _State(
            records=records,
            current=list(records),
            position={code: i for i, code in enumerate(records)},
            households={k: list(v) for k, v in reg.households.items()},
            renewals=renewals,
            renewal_cursor=after,
            next_resident=reg.next_resident,
            next_household=reg.next_household,
            next_seal=reg.next_seal,
            next_certificate=reg.next_certificate,
            sequence=len(records),
        )

    def _state_after(self, day: int) -> _State:
        """A private copy of the state at the end of `day` (day 0: right after the full load)."""
        if 0 not in self._checkpoints:
            self._checkpoints[0] = self._initial_state()
        base = max(d for d in self._checkpoints if d <= day)
        state = self._checkpoints[base].copy()
        for number in range(base + 1, day + 1):
            for _ in self._simulate_day(state, number):
                pass
        if day > base:
            self._keep(day, state.copy())
        return state

    def _keep(self, day: int, state: _State) -> None:
        if day > 0:
            self._checkpoints = {0: self._checkpoints[0], day: state}

    # --- one day -----------------------------------------------------------------------------------
    def _simulate_day(self, state: _State, number: int) -> Iterator[Event]:
        on = self.as_of + timedelta(days=number)
        rng = np.random.default_rng([self._seed, int(self.municipality.code), 1, number])
        day = _Day(number, on, rng, start_of_day(on), start_of_day(on + timedelta(days=1)))
        residents = len(state.current)
        per_year = residents / 1000.0
        # (millisecond of the day, tie-break, action, argument)
        actions: list[tuple[int, int, str, Any]] = []

        def schedule(kind: str, count: int, office: bool, argument: Any = None) -> None:
            for _ in range(count):
                ms = (
                    OFFICE_OPENS_MS + int(rng.random() * OFFICE_DAY_MS) if office else int(rng.random() * DAY_MS)
                )
                actions.append((ms, len(actions), kind, argument))

        rates = self.rates
        schedule("birth", int(rng.poisson(rates.birth * per_year / DAYS_PER_YEAR)), office=False)
        schedule("death", int(rng.poisson(rates.death * per_year / DAYS_PER_YEAR)), office=False)
        if is_office_day(on):
            for kind in _OFFICE_ACTIONS:
                season = MOVE_SEASON[on.month - 1] if kind in _MOVES else 1.0
                lam = getattr(rates, kind) * per_year / WORKING_DAYS_PER_YEAR * season
                schedule(kind, int(rng.poisson(lam)), office=True)
            for code in self._due_for_renewal(state, on):
                schedule("card_renewed", 1, office=True, argument=code)
            self._schedule_tax(state, on, actions)
        actions.sort(key=lambda a: (a[0], a[1]))
        for ms, _, kind, argument in actions:
            at = day.midnight + timedelta(milliseconds=ms)
            getattr(self, f"_do_{kind}")(state, day, at, argument)
            yield from day.events
            day.events.clear()

    def _due_for_renewal(self, state: _State, on: date) -> list[str]:
        """Residents whose card is due for renewal since the last working day (weekends roll over)."""
        due: list[str] = []
        today = on.toordinal()
        for ordinal in range(state.renewal_cursor + 1, today + 1):
            for code in state.renewals.pop(ordinal, ()):
                record = state.records.get(code)
                if record is None or record["status"] != "CURRENT":
                    continue
                card = next((c for c in record["jpki_certificates"] if c["kind"] == "CARD"), None)
                # Stale entries (the card was revoked or replaced since) no longer match.
                if card is not None and _renewal_day(card, self.as_of.toordinal()) == ordinal:
                    due.append(code)
        state.renewal_cursor = max(state.renewal_cursor, today)
        return due

    def _schedule_tax(self, state: _State, on: date, actions: list[tuple[int, int, str, Any]]) -> None:
        days = tax_assessment_days(on.year)
        if on not in days:
            return
        k = days.index(on)
        # Partitions whose own day fell before the simulation started are processed on its first one.
        partitions = {p for p in range(len(days)) if p == k or (p < k and days[p] <= self.as_of)}
        codes = [c for c in state.current if int(c) % len(days) in partitions]
        for j, code in enumerate(codes):
            ms = OFFICE_OPENS_MS + j * OFFICE_DAY_MS // max(1, len(codes))
            actions.append((ms, len(actions), "tax_assessed", code))

    # --- emitting ----------------------------------------------------------------------------------
    def _event(
        self, sequence: int, code: str, change_type: str, at: datetime, sent_at: datetime, after: Record | None
    ) -> Event:
        return {
            "event_id": str(uuid.uuid5(EVENT_NAMESPACE, f"{self._seed}/{self.municipality.code}/{sequence}")),
            "municipality_code": self.municipality.code,
            "resident_code": code,
            "sequence": sequence,
            "change_type": change_type,
            "event_time": at,
            "notified_on": at.astimezone(JST).date(),
            "sent_at": sent_at,
            "after": after,
        }

    def _emit(self, state: _State, day: _Day, at: datetime, change_type: str, code: str,
              after: Record | None) -> None:
        """The only writer of state.records: every change of the register is an event."""
        state.sequence += 1
        if after is None:
            state.records.pop(code, None)
        else:
            state.records[code] = after
        day.events.append(self._event(state.sequence, code, change_type, at, day.sent_at, after))

    # --- picking residents -------------------------------------------------------------------------
    def _pick(self, state: _State, day: _Day, accept: Callable[[Record], bool | float]) -> str | None:
        """A current resident drawn uniformly and accepted by `accept` (True/False or a probability)."""
        current = state.current
        if not current:
            return None
        for _ in range(MAX_TRIES):
            code = current[int(day.u() * len(current))]
            verdict = accept(state.records[code])
            if verdict is True or (verdict is not False and day.u() < verdict):
                return code
        return None

    def _members(self, state: _State, record: Record) -> list[Record]:
        return [state.records[c] for c in state.households[record["household_number"]]]

    def _family_name(self, day: _Day) -> PersonName:
        ctx = self.register.context
        return ctx.family_name(int(day.rng.choice(len(ctx.family_weights), p=ctx.family_weights)))

    def _other_municipality(self, day: _Day) -> int:
        ctx = self.register.context
        return int(day.rng.choice(len(ctx.other_weights), p=ctx.other_weights))

    def _new_household_number(self, state: _State) -> str:
        number = self.register.context.identifiers.household_number(state.next_household)
        state.next_household += 1
        return number

    def _new_card(self, state: _State, code: str, kind: str, on: date, not_after: date | None = None) -> Record:
        serial = self.register.context.identifiers.jpki_serial(state.next_certificate)
        state.next_certificate += 1
        cert = card_certificate(serial, kind, on, not_after)
        due = _renewal_day(cert, self.as_of.toordinal()) if kind == "CARD" else None
        if due is not None:
            state.renewals.setdefault(due, []).append(code)
        return cert

    def _leave_household(self, state: _State, code: str) -> None:
        number = state.records[code]["household_number"]
        members = state.households[number]
        members.remove(code)
        if not members:
            del state.households[number]

    @staticmethod
    def _abolished_seal(record: Record) -> Record | None:
        seal = record["seal"]
        if seal is None or seal["status"] == "ABOLISHED":
            return seal
        return {**seal, "status": "ABOLISHED"}

    # --- head of household -------------------------------------------------------------------------
    def _rehead(self, state: _State, day: _Day, at: datetime, number: str) -> None:
        """After the head has left: the spouse, else the eldest adult child, else the eldest member
        becomes head; every member's 続柄 and 世帯主氏名 are restated (HOUSEHOLD_CHANGE)."""
        members = [state.records[c] for c in state.households.get(number, ())]
        if not members:
            return
        if any(m["relationship"] == HEAD for m in members):
            return
        by_age = sorted(members, key=lambda m: (m["birth_date"], m["resident_code"]))
        spouse = next((m for m in members if m["relationship"] in ("妻", "夫")), None)
        child = next((m for m in by_age if m["relationship"] == "子" and _age(m, day.date) >= ADULT_AGE), None)
        head = spouse or child or by_age[0]
        head_rel = head["relationship"]
        married_son = any(m["relationship"] == "子の妻" for m in members) and head_rel == "子"
        head_birth = head["birth_date"]
        for m in [head, *(m for m in by_age if m is not head)]:
            rel = m["relationship"]
            if m is head:
                new = HEAD
            elif head_rel in ("妻", "夫"):
                side = "夫の" if head_rel == "妻" else "妻の"
                new = f"{side}{rel}" if rel in ("父", "母", "兄", "姉", "弟", "妹") else rel
            elif head_rel == "子":
                new = {
                    "妻": "母", "夫": "父", "父": "祖父", "母": "祖母", "兄": "おじ", "弟": "おじ", "姉": "おば",
                    "妹": "おば", "同居人": "同居人",
                }.get(rel, "")
                if rel == "子":
                    new = _sibling(m["sex"], m["birth_date"] < head_birth)
                elif rel == "子の妻":
                    new = "妻" if married_son else "兄弟の妻"
                elif rel == "孫":
                    new = "子" if married_son else ("甥" if m["sex"] == MALE else "姪")
                new = new or "同居人"
            elif head_rel in ("父", "母"):
                new = {"妻": "子の妻", "夫": "子の夫", "子": "孫", "孫": "曾孫", "父": "夫", "母": "妻",
                       "兄": "子", "姉": "子", "弟": "子", "妹": "子"}.get(rel, "同居人")
            elif head_rel in ("兄", "姉", "弟", "妹") and rel in ("兄", "姉", "弟", "妹"):
                new = _sibling(m["sex"], m["birth_date"] < head_birth)
            elif head_rel in ("兄", "姉", "弟", "妹") and rel in ("父", "母"):
                new = rel
            else:
                new = "同居人"
            if m is head:
                state.households[number].remove(m["resident_code"])
                state.households[number].insert(0, m["resident_code"])
            after = {**m, "relationship": new, "household_head_name": _name(head), "notified_on": day.date}
            self._emit(state, day, at, "HOUSEHOLD_CHANGE", m["resident_code"], after)

    def _restate_head_name(self, state: _State, day: _Day, at: datetime, head: Record, change_type: str) -> None:
        for code in list(state.households[head["household_number"]]):
            m = state.records[code]
            if code != head["resident_code"] and m["household_head_name"] != _name(head):
                self._emit(state, day, at, change_type, code, {**m, "household_head_name": _name(head)})

    # --- actions -----------------------------------------------------------------------------------
    def _do_birth(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        mother_code = self._pick(state, day, lambda r: r["sex"] == FEMALE and r["relationship"] in (
            HEAD, "妻", "子の妻") and 20 <= _age(r, on) < 45)
        if mother_code is None:
            return
        mother = state.records[mother_code]
        ctx = self.register.context
        sex = MALE if day.u() < 0.512 else FEMALE
        born = on - timedelta(days=int(day.u() * 14))
        code_counter = state.next_resident
        state.next_resident += 1
        record = resident_record(
            ctx,
            counter=code_counter,
            household_number=mother["household_number"],
            head_name=mother["household_head_name"],
            relationship="孫" if mother["relationship"] == "子の妻" else "子",
            family=PersonName(mother["family_name"], mother["family_name_kana"]),
            given=ctx.given_name(sex, day.u()),
            birth_date=born,
            sex=sex,
            address=mother["address"],
            address_set_on=born,
            became_resident_on=born,
            notified_on=on,
            previous_address=None,
            registered_domicile=mother["registered_domicile"],
            domicile_head=mother["domicile_head"],
        )
        code = record["resident_code"]
        state.add_current(code)
        state.households[mother["household_number"]].append(code)
        self._emit(state, day, at, "BIRTH", code, record)

    def _do_death(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        code = self._pick(
            state, day, lambda r: min(1.0, math.exp(MORTALITY_SLOPE * (_age(r, on) - MORTALITY_REFERENCE_AGE)))
        )
        if code is None:
            return
        record = state.records[code]
        died = max(record["birth_date"], on - timedelta(days=int(day.u() * 3)))
        after = {
            **record, "status": "DELETED", "deletion_reason": "DEATH", "deleted_on": died, "notified_on": on,
            # The seal registration lapses and the JPKI certificates are revoked on death.
            "seal": self._abolished_seal(record), "jpki_certificates": [],
        }
        state.remove_current(code)
        number = record["household_number"]
        self._leave_household(state, code)
        self._emit(state, day, at, "DEATH", code, after)
        if record["relationship"] == HEAD:
            self._rehead(state, day, at, number)

    def _do_move_in(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        ctx = self.register.context
        u = day.u
        moved = on - timedelta(days=int(u() * 14))
        previous = ctx.other_address(self._other_municipality(day), u(), 1 + int(u() * 40), 1 + int(u() * 30))
        if u() < 0.2:
            self._move_in_joining(state, day, at, moved, previous)
            return
        size = MOVER_HOUSEHOLD_SIZES[pick(u, MOVER_HOUSEHOLD_WEIGHTS)]
        members = compose(size, u)
        if size == 1 and u() < 0.7:  # most people moving alone are students and young workers
            members = [replace(members[0], age=18.0 + 17.0 * u())]
        number = self._new_household_number(state)
        address = ctx.random_address(u)
        family = self._family_name(day)
        domicile = None
        if u() >= FOREIGN_HOUSEHOLD_SHARE:
            domicile = ctx.domicile(None if u() < 0.3 else self._other_municipality(day), u(), 1 + int(u() * 2999))
        names = [(family if m.relationship != "同居人" else self._family_name(day), ctx.given_name(m.sex, u()))
                 for m in members]
        head_name = full_name(names[0][0].kanji, names[0][1].kanji)
        state.households[number] = []
        for m, (fam, giv) in zip(members, names, strict=True):
            born = max(date(1900, 1, 1), on - timedelta(days=int(m.age * DAYS_PER_YEAR) + 14))
            counter = state.next_resident
            state.next_resident += 1
            code = ctx.identifiers.resident_code(counter)
            certs = [self._new_card(state, code, "CARD", on - timedelta(days=int(u() * 4 * 365)))] \
                if u() < 0.75 else []
            if certs and certs[0]["not_before"] < born:
                certs = []
            record = resident_record(
                ctx, counter=counter, household_number=number, head_name=head_name, relationship=m.relationship,
                family=fam, given=giv, birth_date=born, sex=m.sex, address=address,
                address_set_on=moved, became_resident_on=moved, notified_on=on, previous_address=previous,
                registered_domicile=domicile, domicile_head=head_name if domicile else None,
                jpki_certificates=certs,
            )
            state.add_current(code)
            state.households[number].append(code)
            self._emit(state, day, at, "MOVE_IN", code, record)

    def _move_in_joining(self, state: _State, day: _Day, at: datetime, moved: date, previous: str) -> None:
        """Someone moves into an existing household: a bride joining a man living alone, or a
        widowed mother moving in with her child."""
        on = day.date
        ctx = self.register.context
        u = day.u
        as_wife = u() < 0.6
        if as_wife:
            host_code = self._pick(state, day, lambda r: r["relationship"] == HEAD and r["sex"] == MALE
                                   and 25 <= _age(r, on) < 45 and len(state.households[r["household_number"]]) == 1)
        else:
            host_code = self._pick(state, day, lambda r: r["relationship"] == HEAD and 45 <= _age(r, on) < 70)
        if host_code is None:
            return
        host = state.records[host_code]
        host_age = _age(host, on)
        if as_wife:
            relationship, age = "妻", max(20.0, host_age - 6.0 * u() + 1.0)
            domicile, domicile_head = host["registered_domicile"], _name(host)
        else:
            relationship, age = "母", min(100.0, host_age + 25.0 + 10.0 * u())
            domicile, domicile_head = host["registered_domicile"], None
        family = PersonName(host["family_name"], host["family_name_kana"])
        counter = state.next_resident
        state.next_resident += 1
        given = ctx.given_name(FEMALE, u())
        if domicile_head is None and domicile is not None:
            domicile_head = full_name(family.kanji, ctx.given_name(MALE, u()).kanji)
        record = resident_record(
            ctx, counter=counter, household_number=host["household_number"], head_name=_name(host),
            relationship=relationship, family=family, given=given,
            birth_date=on - timedelta(days=int(age * DAYS_PER_YEAR)), sex=FEMALE, address=host["address"],
            address_set_on=moved, became_resident_on=moved, notified_on=on, previous_address=previous,
            registered_domicile=domicile, domicile_head=domicile_head if domicile else None,
        )
        code = record["resident_code"]
        state.add_current(code)
        state.households[host["household_number"]].append(code)
        self._emit(state, day, at, "MOVE_IN", code, record)
        if as_wife and host["domicile_head"] is not None and host["domicile_head"] != _name(host):
            # Marriage makes a new family register with the husband as its head.
            self._emit(state, day, at, "HOUSEHOLD_CHANGE", host_code,
                       {**host, "domicile_head": _name(host), "notified_on": on})

    def _do_move_out(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        if day.u() < 0.45:
            code = self._pick(state, day, lambda r: True)
            if code is None:
                return
            codes = list(state.households[state.records[code]["household_number"]])
        else:
            code = self._pick(state, day, lambda r: r["relationship"] == "子" and 18 <= _age(r, on) < 36)
            if code is None:
                return
            codes = [code]
        reason = "EMIGRATION" if day.u() < 0.05 else "MOVE_OUT"
        for c in codes:
            record = state.records[c]
            after = {**record, "status": "DELETED", "deletion_reason": reason, "deleted_on": on, "notified_on": on,
                     "seal": self._abolished_seal(record)}
            state.remove_current(c)
            self._leave_household(state, c)
            self._emit(state, day, at, "MOVE_OUT", c, after)

    def _do_move_within(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        ctx = self.register.context
        moved = on - timedelta(days=int(day.u() * 14))
        address = ctx.random_address(day.u)
        if day.u() < 0.7:
            code = self._pick(state, day, lambda r: True)
            if code is None:
                return
            for m in self._members(state, state.records[code]):
                after = {**m, "address": address, "address_set_on": moved, "notified_on": on,
                         "previous_address": ctx.address_text(m["address"])}
                self._emit(state, day, at, "MOVE_WITHIN", m["resident_code"], after)
            return
        # A grown-up child leaves the parents' household for a place of their own.
        code = self._pick(state, day, lambda r: r["relationship"] == "子" and 18 <= _age(r, on) < 41)
        if code is None:
            return
        record = state.records[code]
        self._leave_household(state, code)
        number = self._new_household_number(state)
        state.households[number] = [code]
        after = {**record, "household_number": number, "relationship": HEAD, "household_head_name": _name(record),
                 "address": address, "address_set_on": moved, "notified_on": on,
                 "previous_address": ctx.address_text(record["address"])}
        self._emit(state, day, at, "MOVE_WITHIN", code, after)

    def _do_marriage(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        husband_code = self._pick(state, day, lambda r: r["relationship"] == HEAD and r["sex"] == MALE
                                  and 25 <= _age(r, on) < 46 and len(state.households[r["household_number"]]) == 1)
        if husband_code is None:
            return
        husband = state.records[husband_code]

        def bride(r: Record) -> bool:
            if r["sex"] != FEMALE or not 23 <= _age(r, on) < 44 or r["household_number"] == husband["household_number"]:
                return False
            alone = r["relationship"] == HEAD and len(state.households[r["household_number"]]) == 1
            return alone or r["relationship"] == "子"

        wife_code = self._pick(state, day, bride)
        if wife_code is None:
            return
        wife = state.records[wife_code]
        self._leave_household(state, wife_code)
        state.households[husband["household_number"]].append(wife_code)
        husband_name = _name(husband)
        renamed = wife["family_name"] != husband["family_name"]
        after = {
            **wife, "household_number": husband["household_number"], "relationship": "妻",
            "household_head_name": husband_name, "family_name": husband["family_name"],
            "family_name_kana": husband["family_name_kana"], "address": husband["address"],
            "address_set_on": on, "notified_on": on, "previous_address": self.register.context.address_text(
                wife["address"]) if wife["address"] != husband["address"] else wife["previous_address"],
            "registered_domicile": husband["registered_domicile"],
            "domicile_head": husband_name if husband["registered_domicile"] else None,
            # A registered seal showing the old family name no longer matches the name: it lapses.
            "seal": self._abolished_seal(wife) if renamed else wife["seal"],
        }
        self._emit(state, day, at, "HOUSEHOLD_CHANGE", wife_code, after)
        if husband["registered_domicile"] and husband["domicile_head"] != husband_name:
            self._emit(state, day, at, "HOUSEHOLD_CHANGE", husband_code,
                       {**husband, "domicile_head": husband_name, "notified_on": on})

    def _do_separation(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        ctx = self.register.context
        code = self._pick(state, day, lambda r: r["relationship"] == "妻" and 25 <= _age(r, on) < 65)
        if code is None:
            return
        wife = state.records[code]
        children = [m for m in self._members(state, wife)
                    if m["relationship"] == "子" and _age(m, on) < ADULT_AGE] if day.u() < 0.6 else []
        number = self._new_household_number(state)
        address = ctx.random_address(day.u)
        family = wife["family_name"], wife["family_name_kana"]
        if day.u() < 0.7:  # back to the maiden name
            maiden = self._family_name(day)
            family = maiden.kanji, maiden.kana
        renamed = family[0] != wife["family_name"]
        head_name = full_name(family[0], wife["given_name"])
        state.households[number] = []
        for m in [wife, *children]:
            self._leave_household(state, m["resident_code"])
            state.households[number].append(m["resident_code"])
            changes: dict[str, Any] = {
                "household_number": number, "household_head_name": head_name, "address": address,
                "address_set_on": on, "notified_on": on, "previous_address": ctx.address_text(m["address"]),
            }
            if m is wife:
                changes.update(relationship=HEAD, family_name=family[0], family_name_kana=family[1],
                               domicile_head=head_name if m["registered_domicile"] else None,
                               seal=self._abolished_seal(m) if renamed else m["seal"])
            self._emit(state, day, at, "HOUSEHOLD_CHANGE", m["resident_code"], {**m, **changes})

    def _do_name_change(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        ctx = self.register.context
        code = self._pick(state, day, lambda r: _age(r, on) >= ADULT_AGE)
        if code is None:
            return
        record = state.records[code]
        if day.u() < 0.2:  # 名の変更
            given = ctx.given_name(record["sex"], day.u())
            after = {**record, "given_name": given.kanji, "given_name_kana": given.kana, "notified_on": on}
        else:  # 氏の変更, e.g. by adoption
            family = self._family_name(day)
            after = {**record, "family_name": family.kanji, "family_name_kana": family.kana, "notified_on": on,
                     "seal": self._abolished_seal(record) if family.kanji != record["family_name"] else
                     record["seal"]}
        if after["relationship"] == HEAD:
            after["household_head_name"] = _name(after)
        self._emit(state, day, at, "NAME_CHANGE", code, after)
        if after["relationship"] == HEAD:
            self._restate_head_name(state, day, at, after, "NAME_CHANGE")

    def _do_seal_registered(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        code = self._pick(state, day, lambda r: (r["seal"] is None or r["seal"]["status"] == "ABOLISHED")
                          and _age(r, on) >= ADULT_AGE)
        if code is None:
            return
        record = state.records[code]
        ctx = self.register.context
        seal = seal_registration(ctx.identifiers.seal_number(state.next_seal), on, ctx.seals.png(record["family_name"]))
        state.next_seal += 1
        self._emit(state, day, at, "SEAL_REGISTERED", code, {**record, "seal": seal, "notified_on": on})

    def _do_seal_abolished(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        code = self._pick(state, day, lambda r: r["seal"] is not None and r["seal"]["status"] == "REGISTERED")
        if code is None:
            return
        record = state.records[code]
        self._emit(state, day, at, "SEAL_ABOLISHED", code,
                   {**record, "seal": self._abolished_seal(record), "notified_on": day.date})

    def _do_card_issued(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        on = day.date
        if day.u() < 0.75:
            code = self._pick(state, day, lambda r: not any(c["kind"] == "CARD" for c in r["jpki_certificates"]))
            if code is None:
                return
            record = state.records[code]
            certs = [self._new_card(state, code, "CARD", on)]
        else:  # the smartphone certificate (スマホ用電子証明書) for a card holder
            code = self._pick(state, day, lambda r: _age(r, on) >= 15 and [c["kind"] for c in r["jpki_certificates"]]
                              == ["CARD"] and r["jpki_certificates"][0]["not_after"] > on)
            if code is None:
                return
            record = state.records[code]
            card = record["jpki_certificates"][0]
            certs = [card, self._new_card(state, code, "SMARTPHONE", on, card["not_after"])]
        self._emit(state, day, at, "CARD_ISSUED", code, {**record, "jpki_certificates": certs, "notified_on": on})

    def _do_card_renewed(self, state: _State, day: _Day, at: datetime, code: str) -> None:
        record = state.records.get(code)
        if record is None or record["status"] != "CURRENT":
            return
        certs = [self._new_card(state, code, "CARD", day.date) if c["kind"] == "CARD" else c
                 for c in record["jpki_certificates"]]
        self._emit(state, day, at, "CARD_RENEWED", code, {**record, "jpki_certificates": certs,
                                                          "notified_on": day.date})

    def _do_card_revoked(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        code = self._pick(state, day, lambda r: bool(r["jpki_certificates"]))
        if code is None:
            return
        record = state.records[code]
        self._emit(state, day, at, "CARD_REVOKED", code, {**record, "jpki_certificates": [], "notified_on": day.date})

    def _do_record_removed(self, state: _State, day: _Day, at: datetime, _: Any) -> None:
        """An erroneous record (e.g. a duplicate registration) is removed from the register altogether."""
        code = self._pick(state, day, lambda r: r["relationship"] != HEAD
                          or len(state.households[r["household_number"]]) == 1)
        if code is None:
            return
        state.remove_current(code)
        self._leave_household(state, code)
        self._emit(state, day, at, "RECORD_REMOVED", code, None)

    def _do_tax_assessed(self, state: _State, day: _Day, at: datetime, code: str) -> None:
        record = state.records.get(code)
        on = day.date
        fiscal_year = on.year
        if record is None or record["status"] != "CURRENT":
            return
        jan1 = date(fiscal_year, 1, 1)
        # Assessed by the municipality of residence on 1 January, for adults of the previous year.
        if record["became_resident_on"] > jan1 or _age(record, jan1) < ADULT_AGE:
            return
        taxes = record["tax_records"]
        if taxes and taxes[-1]["fiscal_year"] >= fiscal_year:
            return
        if taxes:
            income = taxes[-1]["income_yen"] * math.exp(0.01 + 0.06 * float(day.rng.standard_normal()))
        else:
            share, median, sigma = income_median_and_spread(_age(record, jan1), record["sex"])
            if day.u() >= share / 10:  # few adults without income start earning in a given year
                return
            income = median * math.exp(sigma * float(day.rng.standard_normal()))
        new = tax_record(fiscal_year, int(income) // 1000 * 1000, "NOT_DUE")
        after = {**record, "tax_records": [*taxes, new][-TAX_YEARS_KEPT:]}
        self._emit(state, day, at, "TAX_ASSESSED", code, after)



def _renewal_day(card: Record, after: int) -> int | None:
    """The day (ordinal) the holder renews this card certificate, or None if they let it lapse.

    Derived from the serial, so the decision is fixed when the certificate is issued. A renewal day
    that fell before the simulation started (`after`) was missed: that certificate lapses.
    """
    h = int(card["serial"], 16)
    if h % 100 >= RENEWAL_PERCENT:
        return None
    expiry = card["not_after"].toordinal()
    due = expiry - 1 - (h >> 8) % RENEWAL_WINDOW_DAYS
    return due if due > after else None
