"""The rules of a household's support money (domain.support_payments): the amount applied for of each procedure
from the level, the household's size and what was stated; the amount at the current level after a re-survey;
and which payments are refused."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.damage_levels import DamageLevel
from domain.disaster_applications import Procedure
from domain.errors import InvalidArgumentError
from domain.livelihood_recovery_support import DwellingLoss, Rebuild
from domain.support_payments import (
    Statement,
    SupportError,
    check_amount_change,
    check_payment,
    current_amount,
    paid_on_date,
    payment_reference,
    support_amount,
    support_procedure,
)

LIVELIHOOD, LOAN = Procedure.LIVELIHOOD_RECOVERY_SUPPORT, Procedure.RELIEF_LOAN


def test_livelihood_support_from_the_level_the_size_and_the_plan() -> None:
    assert support_amount(LIVELIHOOD, Statement(rebuild=Rebuild.BUILD), DamageLevel.ZENKAI, 3).amount == 3_000_000
    assert support_amount(LIVELIHOOD, Statement(rebuild=Rebuild.BUILD), DamageLevel.ZENKAI, 1).amount == 2_250_000
    assert support_amount(LIVELIHOOD, Statement(rebuild=Rebuild.RENT), DamageLevel.CHUKIBO_HANKAI, 2).amount == 250_000
    # 解体 counts as 全壊 whatever the survey said (or without one).
    demolished = Statement(rebuild=Rebuild.REPAIR, dwelling_loss=DwellingLoss.DEMOLISHED)
    assert support_amount(LIVELIHOOD, demolished, None, 2).amount == 2_000_000
    assert "全壊" in support_amount(LIVELIHOOD, Statement(rebuild=Rebuild.NONE), DamageLevel.ZENKAI, 2).basis


def test_condolence_and_loan_amounts() -> None:
    assert support_amount(Procedure.CONDOLENCE, Statement(breadwinner=True), None, 4).amount == 5_000_000
    assert support_amount(Procedure.DISABILITY_CONDOLENCE, Statement(breadwinner=False), None, 4).amount == 1_250_000
    loan = Statement(loan_requested=1_500_000)
    assert support_amount(LOAN, loan, DamageLevel.ZENKAI, 2).amount == 1_500_000


@pytest.mark.parametrize(("proc", "statement", "level", "argument"), [
    (LIVELIHOOD, Statement(), DamageLevel.ZENKAI, "rebuild"),
    (LIVELIHOOD, Statement(rebuild=Rebuild.BUILD, breadwinner=True), DamageLevel.ZENKAI, "breadwinner"),
    (Procedure.CONDOLENCE, Statement(), None, "breadwinner"),
    (Procedure.CONDOLENCE, Statement(breadwinner=True, loan_requested=5), None, "loan_requested"),
    (LOAN, Statement(), DamageLevel.ZENKAI, "loan_requested"),
    (LOAN, Statement(loan_requested=-1), DamageLevel.ZENKAI, "loan_requested"),
    (LOAN, Statement(loan_requested=2_500_001), DamageLevel.ZENKAI, "loan_requested"),  # the limit: 2,500,000
    (Procedure.RISAI_CERTIFICATE, Statement(), DamageLevel.ZENKAI, "procedure"),
])
def test_a_statement_that_does_not_fit_is_refused_naming_the_field(proc: Procedure, statement: Statement,
                                                                    level: DamageLevel | None, argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        support_amount(proc, statement, level, 2)
    assert refused.value.argument == argument


def test_no_amount_by_level_before_the_survey() -> None:
    with pytest.raises(SupportError, match="not assessed"):
        support_amount(LIVELIHOOD, Statement(rebuild=Rebuild.BUILD), None, 2)
    with pytest.raises(SupportError, match="not assessed"):
        support_amount(LOAN, Statement(loan_requested=1), None, 2)


def test_the_current_level_gives_its_own_amount() -> None:
    build = Statement(rebuild=Rebuild.BUILD)
    lowered = current_amount(LIVELIHOOD, build, DamageLevel.CHUKIBO_HANKAI, 3)
    assert lowered is not None and lowered.amount == 1_000_000
    assert current_amount(LIVELIHOOD, build, None, 3) is None
    # A loan asked above the new level's limit: the limit is what the current level gives.
    loan = current_amount(LOAN, Statement(loan_requested=2_500_000), DamageLevel.HANKAI, 3)
    assert loan is not None and loan.amount == 1_700_000


def test_payments_within_what_is_granted() -> None:
    check_payment(LIVELIHOOD, 1_000_000, granted=3_000_000, paid=2_000_000)  # brings it to the whole: taken
    with pytest.raises(SupportError, match=r"above what is granted.*3,000,000円 granted, 2,500,000円 paid, "
                                           "500,000円 outstanding"):
        check_payment(LIVELIHOOD, 500_001, granted=3_000_000, paid=2_500_000)
    for amount in (0, -1):
        with pytest.raises(InvalidArgumentError) as refused:
            check_payment(LIVELIHOOD, amount, granted=3_000_000, paid=0)
        assert refused.value.argument == "amount"
    with pytest.raises(SupportError, match="below the 2,000,000円 already paid"):
        check_amount_change(LIVELIHOOD, 1_000_000, paid=2_000_000)


def test_references_days_and_procedures() -> None:
    assert payment_reference(" 振込-0001 ") == "振込-0001"
    for bad in ("", "a\nb", "x" * 65):
        with pytest.raises(InvalidArgumentError):
            payment_reference(bad)
    today = dt.date(2026, 12, 2)
    assert paid_on_date(today, today) == today
    with pytest.raises(InvalidArgumentError, match="future"):
        paid_on_date(today + dt.timedelta(days=1), today)
    assert support_procedure("relief-loan") is LOAN
    with pytest.raises(InvalidArgumentError, match="unknown procedure"):
        support_procedure("GIFT")
