"""The register-derived part of the 被災者台帳 (domain.disaster_ledger, docs/domain.md §6.1): each rule, from the
record at 発災日時 and the latest record; and the dwelling id (domain.dwellings)."""

from __future__ import annotations

import datetime as dt

from domain.damage_levels import DamageLevel
from domain.disaster_ledger import (
    DisasterWindow,
    LedgerFlag,
    ReviewReason,
    disaster_window,
    is_damaged,
    ledger_state,
    register_facts,
)
from domain.dwellings import address_text, dwelling_id
from domain.japan_time import JST
from tests.factories import make_resident

OCCURRED = dt.datetime(2026, 11, 20, 14, 46, tzinfo=JST)
OPEN = disaster_window(OCCURRED, None)
OTHER_ADDRESS = {"prefecture": "和歌山県", "municipality": "田辺市", "town": "新庄町", "block": "1番1号",
                 "building": "第二コーポ 101", "latitude": 33.7, "longitude": 135.4}


def facts(**changes: object):  # type: ignore[no-untyped-def]
    return register_facts(make_resident("302066", 1, **changes))


BASE = facts()


def test_unchanged_record_has_no_flag() -> None:
    state = ledger_state(BASE, BASE, OPEN, frozenset())
    assert state is not None and state.flags == () and state.review_reasons == () and state.moved_to is None
    assert (state.status, state.address, state.household_number) == ("CURRENT", BASE.address, BASE.household_number)


def test_move_in_after_the_disaster_is_marked_arrived_after() -> None:
    state = ledger_state(None, facts(), OPEN, frozenset())
    assert state is not None and state.flags == (LedgerFlag.ARRIVED_AFTER,)
    # Arrived and left again (or deleted before 発災日時 and not back): not in the ledger.
    assert ledger_state(None, facts(status="DELETED", deletion_reason="MOVE_OUT",
                                    deleted_on=dt.date(2026, 12, 1)), OPEN, frozenset()) is None


def test_death_inside_the_window_is_queued_for_condolence_review() -> None:
    died = facts(status="DELETED", deletion_reason="DEATH", deleted_on=dt.date(2026, 11, 20))
    state = ledger_state(BASE, died, OPEN, frozenset())
    assert state is not None and state.flags == (LedgerFlag.DIED, LedgerFlag.CONDOLENCE_REVIEW)
    assert state.deleted_on == dt.date(2026, 11, 20) and state.status == "DELETED"


def test_death_outside_the_window_is_marked_only() -> None:
    closed = disaster_window(OCCURRED, dt.datetime(2026, 12, 31, 23, 0, tzinfo=JST))
    assert closed == DisasterWindow(dt.date(2026, 11, 20), dt.date(2026, 12, 31))
    after = facts(status="DELETED", deletion_reason="DEATH", deleted_on=dt.date(2027, 1, 1))
    state = ledger_state(BASE, after, closed, frozenset())
    assert state is not None and state.flags == (LedgerFlag.DIED,)
    last_day = facts(status="DELETED", deletion_reason="DEATH", deleted_on=dt.date(2026, 12, 31))
    assert LedgerFlag.CONDOLENCE_REVIEW in ledger_state(BASE, last_day, closed, frozenset()).flags  # type: ignore[union-attr]
    before = facts(status="DELETED", deletion_reason="DEATH", deleted_on=dt.date(2026, 11, 19))
    assert ledger_state(BASE, before, OPEN, frozenset()).flags == (LedgerFlag.DIED,)  # type: ignore[union-attr]


def test_move_out_keeps_the_person_with_the_new_address() -> None:
    out = facts(status="DELETED", deletion_reason="MOVE_OUT", deleted_on=dt.date(2026, 12, 1), address=OTHER_ADDRESS)
    state = ledger_state(BASE, out, OPEN, frozenset())
    assert state is not None and state.flags == (LedgerFlag.MOVED_OUT,)
    assert state.moved_to == address_text(OTHER_ADDRESS) == "和歌山県田辺市新庄町1番1号 第二コーポ 101"
    abroad = facts(status="DELETED", deletion_reason="EMIGRATION", deleted_on=dt.date(2026, 12, 1))
    state = ledger_state(BASE, abroad, OPEN, frozenset())
    assert state is not None and state.flags == (LedgerFlag.MOVED_OUT,) and state.moved_to is None  # no new address


def test_household_split_is_flagged_for_review() -> None:
    split = facts(household_number="H999999999", relationship="世帯主")
    state = ledger_state(BASE, split, OPEN, frozenset())
    assert state is not None and state.flags == (LedgerFlag.REVIEW,)
    assert state.review_reasons == (ReviewReason.HOUSEHOLD_SPLIT,) and state.household_number == "H999999999"


def test_move_away_from_a_damaged_dwelling_is_flagged_for_review() -> None:
    moved = facts(address=OTHER_ADDRESS)
    damaged = frozenset({BASE.dwelling_id})
    state = ledger_state(BASE, moved, OPEN, damaged)
    assert state is not None and state.review_reasons == (ReviewReason.MOVED_FROM_DAMAGED,)
    assert state.address == address_text(OTHER_ADDRESS) and state.dwelling_id == dwelling_id("302066", OTHER_ADDRESS)
    # The same move from an undamaged dwelling is only a new address.
    assert ledger_state(BASE, moved, OPEN, frozenset()).flags == ()  # type: ignore[union-attr]
    out = facts(status="DELETED", deletion_reason="MOVE_OUT", deleted_on=dt.date(2026, 12, 1))
    assert ledger_state(BASE, out, OPEN, damaged).flags == (LedgerFlag.MOVED_OUT, LedgerFlag.REVIEW)  # type: ignore[union-attr]


def test_damaged_means_hankai_or_worse() -> None:
    assert [level for level in DamageLevel if is_damaged(level)] == [
        DamageLevel.ZENKAI, DamageLevel.DAIKIBO_HANKAI, DamageLevel.CHUKIBO_HANKAI, DamageLevel.HANKAI]


def test_the_rule_is_a_function_of_base_and_latest() -> None:
    latest = facts(household_number="H1", address=OTHER_ADDRESS)
    damaged = frozenset({BASE.dwelling_id})
    assert ledger_state(BASE, latest, OPEN, damaged) == ledger_state(BASE, latest, OPEN, damaged)


def test_dwelling_id_is_stable_and_per_full_address() -> None:
    address = make_resident("302066", 1)["address"]
    # The same every time, and the coordinates are not part of the address.
    assert dwelling_id("302066", address) == dwelling_id("302066", {**address, "latitude": 0.0})
    assert dwelling_id("302066", address) == "340859dedc87a663ca3620fa"  # pinned: ids are stored
    assert len(dwelling_id("302066", address)) == 24
    assert dwelling_id("302066", {**address, "building": "A棟"}) != dwelling_id("302066", address)
    assert dwelling_id("045811", address) != dwelling_id("302066", address)
    moved_text = {**address, "town": address["town"] + "3", "block": address["block"][1:]}
    assert dwelling_id("302066", moved_text) != dwelling_id("302066", address)
