"""The pure rules of the staff pages: logins, passwords, lockout, session expiry; the staff items and the
ledger search."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.damage_levels import DamageLevel
from domain.disaster_ledger import LedgerFlag
from domain.errors import InvalidArgumentError
from domain.ledger_staff_items import kana_key, ledger_search, staff_item_values
from domain.staff_accounts import (
    LOCKOUT,
    MAX_FAILED_SIGN_INS,
    SESSION_IDLE,
    SESSION_LIFETIME,
    check_password,
    locked_until,
    session_expiry,
    staff_login,
    staff_municipality,
)

T = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def test_logins_municipalities_and_passwords() -> None:
    assert staff_login(" tanabe.sato ") == "tanabe.sato"
    for bad in ("T", "1abc", "tanabe sato", "田辺", "a" * 65):
        with pytest.raises(InvalidArgumentError, match="name"):
            staff_login(bad)
    assert staff_municipality("302066") == "302066"
    with pytest.raises(InvalidArgumentError, match="municipality"):
        staff_municipality("302067")  # wrong check digit
    check_password("correct horse battery")
    for bad in ("short", "a" * 20, "x" * 257):
        with pytest.raises(InvalidArgumentError, match="password"):
            check_password(bad)


def test_lockout_and_session_expiry() -> None:
    assert locked_until(MAX_FAILED_SIGN_INS - 1, T) is None
    assert locked_until(MAX_FAILED_SIGN_INS, T) == T + LOCKOUT
    assert session_expiry(T, T) == T + SESSION_IDLE
    assert session_expiry(T, T + SESSION_LIFETIME) == T + SESSION_LIFETIME  # used all day: ends anyway


def test_staff_items_are_checked_and_empty_ones_cleared() -> None:
    today = dt.date(2026, 11, 20)
    values = staff_item_values({"contact": "  090 1234  5678 ", "notes": "一行目\n  二行目  ",
                                "consent_recipient": "社協", "consent_on": "2026-11-19"}, today)
    assert values == {"contact": "090 1234 5678", "vulnerable_reason": None, "consent_recipient": "社協",
                      "consent_on": "2026-11-19", "notes": "一行目\n二行目"}
    with pytest.raises(InvalidArgumentError, match="consent_on"):
        staff_item_values({"consent_recipient": "社協", "consent_on": "2026-11-21"}, today)
    with pytest.raises(InvalidArgumentError, match="consent_recipient"):
        staff_item_values({"consent_on": "2026-11-19"}, today)
    with pytest.raises(InvalidArgumentError, match="contact"):
        staff_item_values({"contact": "0" * 201}, today)


def test_search_criteria() -> None:
    assert kana_key("たなべ ﾀﾛｳ") == "タナベタロウ"
    search = ledger_search({"kana": "たなべ", "address": "本宮町", "level": "ZENKAI", "vulnerable": "1",
                            "flag": "MOVED_OUT"})
    assert search.level is DamageLevel.ZENKAI and search.flag is LedgerFlag.MOVED_OUT
    assert search.matches("タナベタロウ", ("和歌山県田辺市本宮町1番",), DamageLevel.ZENKAI, True,
                          frozenset({"MOVED_OUT"}))
    assert not search.matches("タナベタロウ", ("和歌山県田辺市本宮町1番",), DamageLevel.HANKAI, True,
                              frozenset({"MOVED_OUT"}))
    assert ledger_search({"level": "none"}).matches("ア", (), None, False, frozenset())
    assert not ledger_search({"level": "none"}).matches("ア", (), DamageLevel.HANKAI, False, frozenset())
    with pytest.raises(InvalidArgumentError, match="level"):
        ledger_search({"level": "BAD"})
