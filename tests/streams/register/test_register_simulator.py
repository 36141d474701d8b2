from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from domain.codes import is_valid_individual_number
from domain.japan_time import JST
from streams.register.errors import RegisterError
from streams.register.simulator import ChangeRates, RegisterSimulator

OFFICE_TYPES = {
    "MOVE_IN", "MOVE_OUT", "MOVE_WITHIN", "HOUSEHOLD_CHANGE", "NAME_CHANGE", "SEAL_REGISTERED", "SEAL_ABOLISHED",
    "CARD_ISSUED", "CARD_RENEWED", "CARD_REVOKED", "TAX_ASSESSED", "RECORD_REMOVED",
}
Event = dict[str, Any]


def _apply(events: list[Event], instant: datetime) -> dict[str, Any]:
    """The receiver's view: apply the events up to `instant` in sequence order."""
    register: dict[str, Any] = {}
    for event in events:
        if event["event_time"] > instant:
            break
        if event["after"] is None:
            register.pop(event["resident_code"], None)
        else:
            register[event["resident_code"]] = event["after"]
    return register


@pytest.fixture(scope="module")
def month(make_simulator: Callable[..., RegisterSimulator]) -> tuple[RegisterSimulator, list[Event], list[Event]]:
    """5,000 residents over the 30 days of March 2026, with removals made frequent enough to see."""
    simulator = make_simulator(population=5000, seed=21, rates=ChangeRates(record_removed=30.0))
    return simulator, list(simulator.full_load()), list(simulator.changes(30))


def test_full_load_is_one_event_per_record_at_the_start(
    month: tuple[RegisterSimulator, list[Event], list[Event]], start: datetime
) -> None:
    simulator, load, _ = month
    assert [e["sequence"] for e in load] == list(range(1, 5001))
    assert {e["change_type"] for e in load} == {"FULL_LOAD"}
    assert {e["event_time"] for e in load} == {start} == {e["sent_at"] for e in load}
    assert all(e["after"]["resident_code"] == e["resident_code"] for e in load)
    assert all(e["municipality_code"] == simulator.municipality.code == "131121" for e in load)
    assert len({e["event_id"] for e in load}) == 5000


def test_every_event_encodes_against_the_contract(
    month: tuple[RegisterSimulator, list[Event], list[Event]], schemas: dict[str, Any],
    encode: Callable[[str, dict[str, Any]], bytes],
) -> None:
    _, load, changes = month
    names = [f["name"] for f in schemas["change"]["fields"]]
    for event in itertools.chain(load[:200], changes):
        assert list(event) == names
        assert encode("change", event)


def test_sequences_are_contiguous_and_times_never_go_back(
    month: tuple[RegisterSimulator, list[Event], list[Event]]
) -> None:
    _, load, changes = month
    events = load + changes
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) and t.microsecond % 1000 == 0 for t in times)


def test_event_times_follow_the_office_day_and_the_daily_batch(
    month: tuple[RegisterSimulator, list[Event], list[Event]], start: datetime
) -> None:
    _, _, changes = month
    first_day = start.astimezone(JST).date() + timedelta(days=1)
    # A head of household's death restates the household (HOUSEHOLD_CHANGE) at the same instant.
    deaths = {e["event_time"] for e in changes if e["change_type"] == "DEATH"}
    for event in changes:
        local = event["event_time"].astimezone(JST)
        assert event["notified_on"] == local.date()
        assert first_day <= local.date() <= first_day + timedelta(days=29)
        end_of_day = datetime.combine(local.date() + timedelta(days=1), time(0), JST)
        assert event["sent_at"] == end_of_day and event["sent_at"] > event["event_time"]
        if event["change_type"] in OFFICE_TYPES and not (
            event["change_type"] == "HOUSEHOLD_CHANGE" and event["event_time"] in deaths
        ):
            assert local.weekday() < 5
            assert time(8, 30) <= local.time() < time(17, 15)
        if event["after"] is not None and event["change_type"] != "TAX_ASSESSED":
            assert event["after"]["notified_on"] == event["notified_on"]


def test_the_event_mix_of_a_month_is_plausible(month: tuple[RegisterSimulator, list[Event], list[Event]]) -> None:
    _, _, changes = month
    kinds = Counter(e["change_type"] for e in changes)
    moves = kinds["MOVE_IN"] + kinds["MOVE_OUT"] + kinds["MOVE_WITHIN"]
    assert moves > max(v for k, v in kinds.items() if k not in ("MOVE_IN", "MOVE_OUT", "MOVE_WITHIN"))
    assert moves > len(changes) / 2
    # March: moves at 2.8 times the usual rate; about 0.1-0.4 % of residents change per working day.
    per_working_day = len(changes) / 22 / 5000
    assert 0.001 < per_working_day < 0.004
    for kind in ("MOVE_IN", "MOVE_OUT", "MOVE_WITHIN", "DEATH", "SEAL_REGISTERED", "CARD_ISSUED", "RECORD_REMOVED"):
        assert kinds[kind] > 0, kind
    assert kinds["DEATH"] < 20 and kinds["BIRTH"] < 15  # 12.9 and 6.3 per 1,000 per year
    assert "FULL_LOAD" not in kinds and "TAX_ASSESSED" not in kinds


def test_after_images_tell_what_happened(month: tuple[RegisterSimulator, list[Event], list[Event]]) -> None:
    _, load, changes = month
    before = {e["resident_code"]: e["after"] for e in load}
    for event in changes:
        kind, after = event["change_type"], event["after"]
        previous = before.get(event["resident_code"])
        if kind == "RECORD_REMOVED":
            assert after is None
            continue
        assert is_valid_individual_number(after["individual_number"])
        if kind == "DEATH":
            assert (after["status"], after["deletion_reason"]) == ("DELETED", "DEATH")
            assert after["jpki_certificates"] == [] and after["deleted_on"] <= event["notified_on"]
        elif kind == "MOVE_OUT":
            assert after["status"] == "DELETED" and after["deletion_reason"] in ("MOVE_OUT", "EMIGRATION")
        elif kind == "MOVE_IN":
            assert previous is None and after["status"] == "CURRENT" and after["previous_address"]
            assert after["became_resident_on"] <= event["notified_on"]
        elif kind == "BIRTH":
            assert previous is None and after["birth_date"] == after["became_resident_on"]
            assert after["relationship"] in ("子", "孫") and after["previous_address"] is None
        elif kind == "MOVE_WITHIN":
            assert after["address"] != previous["address"]
            assert after["address_set_on"] <= event["notified_on"]
        elif kind == "SEAL_REGISTERED":
            assert after["seal"]["status"] == "REGISTERED" and after["seal"]["registered_on"] == event["notified_on"]
        elif kind == "CARD_ISSUED":
            new = {c["serial"] for c in after["jpki_certificates"]} - {c["serial"] for c in previous[
                "jpki_certificates"]}
            assert len(new) == 1
        elif kind == "CARD_RENEWED":
            old = {c["serial"] for c in previous["jpki_certificates"]}
            card = next(c for c in after["jpki_certificates"] if c["kind"] == "CARD")
            assert card["serial"] not in old and card["not_before"] == event["notified_on"]
        elif kind == "CARD_REVOKED":
            assert previous["jpki_certificates"] and after["jpki_certificates"] == []
        if kind not in ("MOVE_IN", "BIRTH"):
            assert previous is not None and previous["resident_code"] == after["resident_code"]
            assert previous["individual_number"] == after["individual_number"]
        before[event["resident_code"]] = after


def test_households_stay_consistent_through_the_month(
    month: tuple[RegisterSimulator, list[Event], list[Event]]
) -> None:
    simulator, _, changes = month
    register = simulator.register_at(changes[-1]["event_time"])
    households: dict[str, list[dict[str, Any]]] = {}
    for record in register.values():
        if record["status"] == "CURRENT":
            households.setdefault(record["household_number"], []).append(record)
    for members in households.values():
        heads = [m for m in members if m["relationship"] == "世帯主"]
        assert len(heads) == 1, [m["relationship"] for m in members]
        head_name = f"{heads[0]['family_name']}\u3000{heads[0]['given_name']}"
        assert all(m["household_head_name"] == head_name for m in members)


def test_split_runs_give_the_same_events(
    make_simulator: Callable[..., RegisterSimulator], start: datetime
) -> None:
    day = [start.astimezone(JST).date() + timedelta(days=d) for d in range(9)]
    whole = list(make_simulator(seed=5).changes(7))
    assert [e["sequence"] for e in whole] == list(range(1001, 1001 + len(whole)))
    assert {e["notified_on"] for e in whole} <= set(day[1:8])
    split_simulator = make_simulator(seed=5)
    split = list(split_simulator.changes(3)) + list(split_simulator.changes(4, from_day=4))
    assert split == whole
    # A fresh simulator replays days 1..3 internally before day 4; going back to an earlier day works too.
    assert list(make_simulator(seed=5).changes(4, from_day=4)) == [e for e in whole if e["notified_on"] >= day[4]]
    assert list(split_simulator.changes(2, from_day=2)) == [e for e in whole if day[2] <= e["notified_on"] <= day[3]]


def test_same_seed_same_events_other_seed_other_events(make_simulator: Callable[..., RegisterSimulator]) -> None:
    a = list(make_simulator(seed=8).changes(5))
    assert a == list(make_simulator(seed=8).changes(5))
    b = list(make_simulator(seed=9).changes(5))
    assert [e["event_id"] for e in a] != [e["event_id"] for e in b]


def test_register_at_equals_the_replay_of_the_events(
    month: tuple[RegisterSimulator, list[Event], list[Event]], make_simulator: Callable[..., RegisterSimulator],
    start: datetime,
) -> None:
    simulator, load, changes = month
    events = load + changes
    ms = timedelta(milliseconds=1)
    instants = [start - ms, start, start + timedelta(hours=20)]
    for event in changes[:: max(1, len(changes) // 12)]:
        instants += [event["event_time"] - ms, event["event_time"], event["event_time"] + ms]
    # The last instant of the simulated month: the end of day 30.
    instants += [changes[-1]["event_time"], changes[-1]["sent_at"] - ms]
    # A separate simulator answers in any order (it has to replay); the one that ran the month too.
    fresh = make_simulator(population=5000, seed=21, rates=ChangeRates(record_removed=30.0))
    for instant in sorted(instants, reverse=True)[:6] + instants[::4]:
        assert fresh.register_at(instant) == _apply(events, instant), instant
    for instant in instants:
        assert simulator.register_at(instant) == _apply(events, instant), instant


def test_removed_records_are_gone_and_deleted_ones_stay(
    month: tuple[RegisterSimulator, list[Event], list[Event]]
) -> None:
    simulator, _, changes = month
    end = changes[-1]["event_time"]
    register = simulator.register_at(end)
    removed = {e["resident_code"] for e in changes if e["change_type"] == "RECORD_REMOVED"}
    deleted = {e["resident_code"] for e in changes if e["change_type"] in ("DEATH", "MOVE_OUT")}
    assert removed and deleted
    assert not removed & set(register)
    assert all(register[c]["status"] == "DELETED" for c in deleted)
    removal = next(e for e in changes if e["change_type"] == "RECORD_REMOVED")
    code = removal["resident_code"]
    assert code in simulator.register_at(removal["event_time"] - timedelta(milliseconds=1))
    assert code not in simulator.register_at(removal["event_time"])


def test_june_tax_assessment_touches_nearly_every_taxpayer(make_simulator: Callable[..., RegisterSimulator]) -> None:
    simulator = make_simulator(population=1500, seed=2, start=datetime(2026, 5, 29, 3, 0, tzinfo=UTC))
    load = {e["resident_code"]: e["after"] for e in simulator.full_load()}
    changes = list(simulator.changes(10))
    assessed = [e for e in changes if e["change_type"] == "TAX_ASSESSED"]
    taxpayers = {c for c, r in load.items() if r["tax_records"] and r["tax_records"][-1]["fiscal_year"] == 2025}
    assessed_codes = {e["resident_code"] for e in assessed}
    assert len(taxpayers & assessed_codes) / len(taxpayers) > 0.95
    days = sorted({e["notified_on"] for e in assessed})
    assert len(days) == 5 and days[0].month == 6 and all(d.weekday() < 5 for d in days)
    for event in assessed:
        taxes = event["after"]["tax_records"]
        assert taxes[-1]["fiscal_year"] == 2026 and len(taxes) <= 3
        assert taxes[-1]["payment_status"] == "NOT_DUE" and taxes[-1]["paid_yen"] == 0


def test_naive_times_are_refused(make_simulator: Callable[..., RegisterSimulator]) -> None:
    with pytest.raises(RegisterError, match="timezone-aware"):
        make_simulator(start=datetime(2026, 3, 1, 9, 0))
    with pytest.raises(RegisterError, match="timezone-aware"):
        make_simulator().register_at(datetime(2026, 3, 1, 9, 0))
