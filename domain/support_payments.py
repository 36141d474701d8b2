"""What a household is granted and paid of the four support procedures of docs/domain.md §6.4 (被災者生活再建支援金,
災害弔慰金, 災害障害見舞金, 災害援護資金), as pure rules: the amount applied for, from what the ledger knows (the
dwelling's assessed level, the household's size at 発災日時) and what the applicant or staff state (a `Statement`:
the rebuild plan, whether the person supported the household, the loan asked for and what its limit depends on);
and whether a payment may be made. The stores are in sinks.support_payments.

The amount applied for of an accepted application is what is granted: a payment may bring the household's paid
total up to it, never above. Re-recording an application's amount (the household changed its rebuild plan) may
not go below what was paid already."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from domain.damage_levels import DamageLevel
from domain.disaster_applications import PROCEDURE_NAMES, Procedure
from domain.disaster_condolence import condolence_amounts
from domain.disaster_relief_loan import relief_loan_limit
from domain.errors import BclError, InvalidArgumentError
from domain.household_size import check_household_size
from domain.livelihood_recovery_support import DwellingLoss, Rebuild, livelihood_support

SUPPORT_PROCEDURES: tuple[Procedure, ...] = (Procedure.LIVELIHOOD_RECOVERY_SUPPORT, Procedure.CONDOLENCE,
                                              Procedure.DISABILITY_CONDOLENCE, Procedure.RELIEF_LOAN)
# Paid once per household (the livelihood support is the household's, the loan its head's): a second accepted
# application of another member for it is refused. The condolence money is per person who died or was disabled,
# so a household's amounts of it are the sum of its applications.
PER_HOUSEHOLD = frozenset({Procedure.LIVELIHOOD_RECOVERY_SUPPORT, Procedure.RELIEF_LOAN})
MAX_REFERENCE = 64


class SupportError(BclError):
    """A support amount or payment that cannot be recorded, with the reason."""


@dataclass(frozen=True)
class Statement:
    """What the applicant or staff state that the ledger cannot know. Only the fields of the procedure are given:
    `rebuild` (and `dwelling_loss`, 解体 or 長期避難 beside the survey) for the livelihood support; `breadwinner`
    for the condolence money; `loan_requested` and the loan limit's facts for the relief loan."""

    rebuild: Rebuild | None = None
    dwelling_loss: DwellingLoss | None = None
    breadwinner: bool | None = None
    loan_requested: int | None = None
    head_injured: bool = False
    household_goods_lost: bool = False
    dwelling_lost: bool = False
    rest_demolished: bool = False

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, False)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Statement:
        values: dict[str, Any] = json.loads(text)
        if "rebuild" in values:
            values["rebuild"] = Rebuild(values["rebuild"])
        if "dwelling_loss" in values:
            values["dwelling_loss"] = DwellingLoss(values["dwelling_loss"])
        return cls(**values)


# The fields of a Statement each procedure reads (the others must not be given: a mistake, not silently dropped).
_FIELDS: Mapping[Procedure, frozenset[str]] = {
    Procedure.LIVELIHOOD_RECOVERY_SUPPORT: frozenset({"rebuild", "dwelling_loss"}),
    Procedure.CONDOLENCE: frozenset({"breadwinner"}),
    Procedure.DISABILITY_CONDOLENCE: frozenset({"breadwinner"}),
    Procedure.RELIEF_LOAN: frozenset({"loan_requested", "head_injured", "household_goods_lost", "dwelling_lost",
                                      "rest_demolished"}),
}


@dataclass(frozen=True)
class SupportAmount:
    amount: int  # yen
    basis: str  # how it was reached, for people to read


def support_procedure(value: Procedure | str) -> Procedure:
    """One of the four support procedures (a certificate has no amount)."""
    proc = value if isinstance(value, Procedure) else _procedure(value)
    if proc not in SUPPORT_PROCEDURES:
        raise InvalidArgumentError("procedure", f"{PROCEDURE_NAMES[proc]} is a certificate, it has no amount "
                                                f"(one of {', '.join(p.value for p in SUPPORT_PROCEDURES)})")
    return proc


def _procedure(value: str) -> Procedure:
    try:
        return Procedure(value.strip().upper().replace("-", "_"))
    except ValueError:
        raise InvalidArgumentError("procedure", f"unknown procedure {value!r} (one of "
                                                f"{', '.join(p.value for p in SUPPORT_PROCEDURES)})") from None


def yen(amount: int) -> str:
    """An amount as the pages, the extract and the refusals write it: 1,000,000円."""
    return f"{amount:,}円"


def support_amount(proc: Procedure, statement: Statement, level: DamageLevel | None,
                   household_size: int) -> SupportAmount:
    """The amount applied for of a household whose dwelling is assessed `level` (None: not yet) and which had
    `household_size` people at 発災日時, with what was stated."""
    proc = support_procedure(proc)
    people = check_household_size(household_size)
    given = {k for k, v in asdict(statement).items() if v not in (None, False)}
    extra = sorted(given - _FIELDS[proc])
    if extra:
        raise InvalidArgumentError(extra[0], f"does not apply to {PROCEDURE_NAMES[proc]}")
    if proc is Procedure.LIVELIHOOD_RECOVERY_SUPPORT:
        if statement.rebuild is None:
            raise InvalidArgumentError("rebuild", f"{PROCEDURE_NAMES[proc]} needs the household's plan: "
                                                  f"{', '.join(Rebuild)}")
        damage = statement.dwelling_loss or level
        if damage is None:
            raise SupportError("the dwelling is not assessed yet: survey it first (its level decides the amount)")
        support = livelihood_support(damage, statement.rebuild, people)
        return SupportAmount(support.total, f"{damage.japanese}・{statement.rebuild.value}・{people}人: 基礎 "
                                            f"{yen(support.basic)} + 加算 {yen(support.additional)}")
    if proc in (Procedure.CONDOLENCE, Procedure.DISABILITY_CONDOLENCE):
        if statement.breadwinner is None:
            raise InvalidArgumentError("breadwinner", "say whether the person supported the household (生計維持者)")
        amounts = condolence_amounts(statement.breadwinner)
        amount = amounts.condolence if proc is Procedure.CONDOLENCE else amounts.disability
        return SupportAmount(amount, "生計維持者" if statement.breadwinner else "生計維持者以外")
    requested = statement.loan_requested
    if requested is None:
        raise InvalidArgumentError("loan_requested", "the amount the household head asks to borrow is needed")
    if isinstance(requested, bool) or not isinstance(requested, int) or requested <= 0:
        raise InvalidArgumentError("loan_requested", f"must be a whole number of yen above 0, got {requested!r}")
    if level is None and not statement.dwelling_lost:
        raise SupportError("the dwelling is not assessed yet: survey it first (its level decides the loan limit)")
    limit = relief_loan_limit(head_injured=statement.head_injured, household_goods_lost=statement.household_goods_lost,
                              damage=level, dwelling_lost=statement.dwelling_lost,
                              rest_demolished=statement.rest_demolished)
    if requested > limit.limit:
        raise InvalidArgumentError("loan_requested", f"{yen(requested)} is above the limit of {yen(limit.limit)} "
                                                     f"({limit.case})")
    return SupportAmount(requested, f"{limit.case}: 限度額 {yen(limit.limit)}")


def current_amount(proc: Procedure, statement: Statement, level: DamageLevel | None,
                   household_size: int) -> SupportAmount | None:
    """What the same statement would give at the dwelling's current level (after a re-survey): for a loan asked
    above the new limit, the limit; None when it gives nothing as stated (not assessed any more, or a fact of the
    statement that contradicts the new level)."""
    try:
        return support_amount(proc, statement, level, household_size)
    except SupportError:
        return None
    except InvalidArgumentError as exc:
        if exc.argument != "loan_requested":
            return None
    try:
        limit = relief_loan_limit(head_injured=statement.head_injured,
                                  household_goods_lost=statement.household_goods_lost, damage=level,
                                  dwelling_lost=statement.dwelling_lost, rest_demolished=statement.rest_demolished)
    except InvalidArgumentError:
        return None
    return SupportAmount(limit.limit, f"{limit.case}: 限度額 {yen(limit.limit)}（申請額を下回る）")


def check_amount_change(proc: Procedure, new_amount: int, paid: int) -> None:
    """An amount recorded again may not fall below what the household was paid of it."""
    if new_amount < paid:
        raise SupportError(f"{PROCEDURE_NAMES[proc]}: the new amount {yen(new_amount)} is below the "
                           f"{yen(paid)} already paid")


def check_payment(proc: Procedure, amount: int, granted: int, paid: int) -> None:
    """A payment of `amount` yen, when `granted` yen were applied for (accepted) and `paid` yen paid already."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidArgumentError("amount", f"must be a whole number of yen, got {amount!r}")
    if amount <= 0:
        raise InvalidArgumentError("amount", f"must be more than 0 yen, got {amount}")
    if paid + amount > granted:
        raise SupportError(f"{PROCEDURE_NAMES[proc]}: a payment of {yen(amount)} is above what is granted: "
                           f"{yen(granted)} granted, {yen(paid)} paid, {yen(granted - paid)} outstanding")


def payment_reference(value: str) -> str:
    """The reference of a payment (振込番号, 支出命令番号): one line, at most MAX_REFERENCE characters."""
    text = value.strip()
    if not text or len(text) > MAX_REFERENCE or any(c in text for c in "\r\n"):
        raise InvalidArgumentError("reference", f"must be one line of 1 to {MAX_REFERENCE} characters, "
                                                f"got {value!r}")
    return text


def paid_on_date(value: dt.date, today: dt.date) -> dt.date:
    """The day a payment was made: not after today."""
    if value > today:
        raise InvalidArgumentError("paid_on", f"{value.isoformat()} is in the future (today is {today.isoformat()})")
    return value


def staff_name(value: str) -> str:
    name = value.strip()
    if not name or any(c in name for c in "\r\n"):
        raise InvalidArgumentError("staff", "name the staff member (one line)")
    return name
