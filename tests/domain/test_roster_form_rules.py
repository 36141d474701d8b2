"""The pure checks behind the roster pages' forms: a telephone number as staff type it, a supporter from a form's
fields, the shipped shelters a plan may lead to, an extraction from a search form."""

from __future__ import annotations

import pytest

from domain.errors import InvalidArgumentError
from domain.evacuation_plan import Supporter, shipped_shelters, supporter, supporter_of
from domain.evacuation_roster import Criterion, phone_number
from domain.roster_extraction import RosterFilter, roster_filter


@pytest.mark.parametrize("text", ["0739-22-1234", " 090-0000-0001 ", "+81 739 22 1234", "(0739)22-1234"])
def test_a_telephone_number_is_taken_trimmed(text: str) -> None:
    assert phone_number(text) == text.strip()


@pytest.mark.parametrize("text", ["", "電話して", "０７３９-２２", "12", "0739-22-1234-5678-9012-3"])
def test_not_a_telephone_number_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        phone_number(text)
    assert refused.value.argument == "phone"


def test_a_supporter_from_fields_keeps_a_colon_and_needs_name_and_relation() -> None:
    assert supporter_of(" 牟婁 一郎 ", "近隣住民", "") == Supporter("牟婁 一郎", "近隣住民", "")
    assert supporter_of("a:b", "民生委員", "1") == Supporter("a:b", "民生委員", "1")  # not split as the CLI's text
    assert supporter("熊野:長男:0739-22-0001") == Supporter("熊野", "長男", "0739-22-0001")
    with pytest.raises(InvalidArgumentError, match="needs a name and a relation"):
        supporter_of("熊野", " ", "0739")


def test_shipped_shelters_are_the_municipality_s_designated_ones_first() -> None:
    shelters = shipped_shelters("302066")
    assert shelters and {s.municipality_code for s in shelters} == {"302066"}
    kinds = [s.kind for s in shelters]
    assert kinds == sorted(kinds, key=lambda k: k != "designated_shelter")


def test_an_extraction_from_a_search_form_and_its_printed_name() -> None:
    wanted = roster_filter({"town": " 今福一丁目 ", "criterion": "physical", "consent": "not-given",
                            "name": "ムロ\u3000ハ"})
    assert wanted == RosterFilter("今福一丁目", Criterion.PHYSICAL, False, "ムロハ")
    assert wanted.selection == "町名: 今福一丁目・事由: 身体障害者手帳・同意なし・氏名検索"
    assert roster_filter({}).selection == "全員"
    with pytest.raises(InvalidArgumentError) as refused:
        roster_filter({"consent": "maybe"})
    assert refused.value.argument == "consent"
    with pytest.raises(InvalidArgumentError) as refused:
        roster_filter({"criterion": "TALL"})
    assert refused.value.argument == "criterion"
