"""Each household's support money on the real disaster store (SQLite on disk), with ledgers built from the backup
(tests.streams.staff_world) and applications made with a real virtual card (tests.streams.card_application): the
amount applied for from the dwelling's level and the household's size at 発災日時, payments up to it, every refusal
naming what was wrong with nothing written, and a re-survey that leaves the amount applied for as it was while
the current level's amount is shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from domain.damage_levels import DamageLevel
from domain.disaster_applications import ApplicationDecisionError, Procedure
from domain.errors import InvalidArgumentError
from domain.livelihood_recovery_support import Rebuild, livelihood_support
from domain.support_payments import Statement, SupportError
from sinks.disaster_ledger import NoLedgerError
from sinks.staff_scope import household_of
from streams.platform import Platform
from tests.platforms import make_platform
from tests.streams.card_application import apply_with_card, uncarded
from tests.streams.staff_world import TANABE, StaffWorld, build_staff_world

LIVELIHOOD = Procedure.LIVELIHOOD_RECOVERY_SUPPORT
TODAY = dt.date.today()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> StaffWorld:
    return build_staff_world(tmp_path_factory.mktemp("support") / "data")


@pytest.fixture
def platform(world: StaffWorld) -> Iterator[Platform]:
    p = make_platform(world.data_dir)
    yield p
    p.disaster_store.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def accepted(p: Platform, world: StaffWorld, procedure: str, level: DamageLevel | None) -> tuple[str, dict[str, Any]]:
    """An accepted application of a 田辺市 person with a card; their dwelling surveyed `level`."""
    person = uncarded(p, p.disaster_ledger.residents(world.disaster_id, TANABE))
    application = apply_with_card(p, world.disaster_id, person, procedure)
    assert application.matched, application.match_reason
    p.disaster_applications.accept(application.application_id, "tanabe.sato", _now())
    if level is not None:
        p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                                   now=_now(), level=level.value, loss_ratio=None, reason="調査")
    return application.application_id, person


def household_size(p: Platform, world: StaffWorld, number: str) -> int:
    return sum(1 for r in p.disaster_ledger.residents(world.disaster_id, TANABE)
               if r["in_base"] and r["household_number"] == number)


def payments(p: Platform) -> int:
    (n,) = p.disaster_store.connection.execute("SELECT count(*) FROM support_payments").fetchone()
    return int(n)


def test_the_amount_applied_for_and_payments_up_to_it(world: StaffWorld, platform: Platform) -> None:
    p = platform
    application_id, person = accepted(p, world, LIVELIHOOD.value, DamageLevel.ZENKAI)
    number = household_of(person)
    size = household_size(p, world, number)
    expected = livelihood_support(DamageLevel.ZENKAI, Rebuild.BUILD, size).total

    recorded = p.support_payments.record_amount(application_id, Statement(rebuild=Rebuild.BUILD), "tanabe.ito",
                                                _now())
    assert (recorded.amount, recorded.level, recorded.household_size) == (expected, DamageLevel.ZENKAI, size)

    pay = p.support_payments.pay
    pay(world.disaster_id, TANABE, number, LIVELIHOOD, amount=1_000_000, paid_on=TODAY, staff="tanabe.ito",
        reference="T-0001", now=_now())
    support = p.support_payments.household(world.disaster_id, TANABE, number)
    [line] = support.procedures
    assert (line.applied, line.paid, line.outstanding) == (expected, 1_000_000, expected - 1_000_000)
    assert [(x.amount, x.paid_by, x.reference) for x in line.payments] == [(1_000_000, "tanabe.ito", "T-0001")]

    before = payments(p)
    with pytest.raises(SupportError, match=f"above what is granted: {expected:,}円 granted, 1,000,000円 paid"):
        pay(world.disaster_id, TANABE, number, LIVELIHOOD, amount=expected, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0002", now=_now())
    with pytest.raises(InvalidArgumentError) as negative:
        pay(world.disaster_id, TANABE, number, LIVELIHOOD, amount=-5, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0003", now=_now())
    assert negative.value.argument == "amount"
    with pytest.raises(SupportError, match="already recorded"):
        pay(world.disaster_id, TANABE, number, LIVELIHOOD, amount=1, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0001", now=_now())
    with pytest.raises(SupportError, match="no accepted application for 災害弔慰金"):
        pay(world.disaster_id, TANABE, number, Procedure.CONDOLENCE, amount=1, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0004", now=_now())
    with pytest.raises(SupportError, match="no household 'NO-SUCH'"):
        pay(world.disaster_id, TANABE, "NO-SUCH", LIVELIHOOD, amount=1, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0005", now=_now())
    with pytest.raises(NoLedgerError):
        pay(world.tanabe_only_id, "045811", number, LIVELIHOOD, amount=1, paid_on=TODAY, staff="tanabe.ito",
            reference="T-0006", now=_now())
    assert payments(p) == before  # nothing of a refused payment written

    # The rest brings it to the whole amount.
    pay(world.disaster_id, TANABE, number, LIVELIHOOD, amount=expected - 1_000_000, paid_on=TODAY,
        staff="tanabe.ito", reference="T-0007", now=_now())
    assert p.support_payments.household(world.disaster_id, TANABE, number).totals()["outstanding"] == 0


def test_a_re_survey_keeps_the_amount_applied_for_and_shows_the_current_one(world: StaffWorld,
                                                                             platform: Platform) -> None:
    p = platform
    application_id, person = accepted(p, world, LIVELIHOOD.value, DamageLevel.ZENKAI)
    number = household_of(person)
    size = household_size(p, world, number)
    p.support_payments.record_amount(application_id, Statement(rebuild=Rebuild.REPAIR), "tanabe.ito", _now())
    p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=_now(), level="CHUKIBO_HANKAI", loss_ratio=None, reason="再調査")
    [line] = p.support_payments.household(world.disaster_id, TANABE, number).procedures
    [amount] = line.amounts
    assert amount.amount == livelihood_support(DamageLevel.ZENKAI, Rebuild.REPAIR, size).total
    assert amount.level is DamageLevel.ZENKAI and amount.changed_since
    assert amount.current is not None
    assert amount.current.amount == livelihood_support(DamageLevel.CHUKIBO_HANKAI, Rebuild.REPAIR, size).total

    # Recorded again (the plan changed to build): the new level applies now, and the history keeps both.
    again = p.support_payments.record_amount(application_id, Statement(rebuild=Rebuild.BUILD), "tanabe.kato", _now())
    assert again.amount == livelihood_support(DamageLevel.CHUKIBO_HANKAI, Rebuild.BUILD, size).total
    history = p.support_payments.household(world.disaster_id, TANABE, number).history
    assert [(c.old_amount, c.amount, c.recorded_by) for c in history] == [
        (None, amount.amount, "tanabe.ito"), (amount.amount, again.amount, "tanabe.kato")]


def test_an_amount_needs_an_accepted_support_application(world: StaffWorld, platform: Platform) -> None:
    p = platform
    person = uncarded(p, p.disaster_ledger.residents(world.disaster_id, TANABE))
    open_one = apply_with_card(p, world.disaster_id, person, "CONDOLENCE")
    with pytest.raises(SupportError, match="is open: only an accepted application has an amount"):
        p.support_payments.record_amount(open_one.application_id, Statement(breadwinner=True), "tanabe.ito", _now())
    p.disaster_applications.accept(open_one.application_id, "tanabe.sato", _now())
    with pytest.raises(InvalidArgumentError) as missing:
        p.support_payments.record_amount(open_one.application_id, Statement(), "tanabe.ito", _now())
    assert missing.value.argument == "breadwinner"
    recorded = p.support_payments.record_amount(open_one.application_id, Statement(breadwinner=True), "tanabe.ito",
                                                _now())
    assert recorded.amount == 5_000_000

    certificate, _ = accepted(p, world, "RISAI_CERTIFICATE", None)
    with pytest.raises(InvalidArgumentError, match="a certificate, it has no amount"):
        p.support_payments.record_amount(certificate, Statement(), "tanabe.ito", _now())
    with pytest.raises(ApplicationDecisionError, match="no application"):
        p.support_payments.record_amount("no-such-application", Statement(), "tanabe.ito", _now())
    (amounts,) = p.disaster_store.connection.execute("SELECT count(*) FROM support_amounts WHERE application_id=?",
                                                     (certificate,)).fetchone()
    assert amounts == 0


def test_the_livelihood_support_is_the_households_once(world: StaffWorld, platform: Platform) -> None:
    p = platform
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    # Two carded members of one household apply: the second one's amount is refused.
    by_household: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["jpki_serials"] and r["in_base"] and p.pki.index.get(r["jpki_serials"].split(",")[0]) is None:
            by_household.setdefault(household_of(r), []).append(r)
    first, second = next(members for members in by_household.values() if len(members) >= 2)[:2]
    ids = []
    for member in (first, second):
        application = apply_with_card(p, world.disaster_id, member, LIVELIHOOD.value)
        p.disaster_applications.accept(application.application_id, "tanabe.sato", _now())
        ids.append(application.application_id)
    p.damage_assessment.survey(world.disaster_id, first["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=_now(), level="ZENKAI", loss_ratio=None, reason="調査")
    p.support_payments.record_amount(ids[0], Statement(rebuild=Rebuild.RENT), "tanabe.ito", _now())
    with pytest.raises(SupportError, match=f"once per household: household {household_of(first)} has its amount "
                                           f"from application {ids[0]}"):
        p.support_payments.record_amount(ids[1], Statement(rebuild=Rebuild.RENT), "tanabe.ito", _now())
