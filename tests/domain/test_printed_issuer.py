"""Naming the issuing municipality as the front of a certificate prints it (domain.printed_issuer)."""

from __future__ import annotations

import pytest

from domain.municipalities import all_municipalities
from domain.printed_issuer import IssuerNameError, resolve_issuer


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("横浜市長", "141003"),  # the mayor's line as printed
        ("横浜市長　山中　竹春", "141003"),  # the whole line, with the mayor's name
        ("横浜市長之印", "141003"),  # the seal
        ("横浜市", "141003"),
        ("神奈川県横浜市長", "141003"),
        ("横浜市中区", "141003"),  # a designated city's ward, from the address: the city issues
        ("札幌市中央区長", "011002"),
        ("141003", "141003"),
        ("１４１００３", "141003"),  # full-width digits
        ("14100", "141003"),  # without the check digit
        ("141011", "141003"),  # a ward's code
        ("世田谷区長", "131121"),  # a special ward issues its own
        ("長野市長", "202011"),  # 長 in the name itself
        ("郡山市長", "072036"),  # 郡 in the name, not a county
        ("奥多摩町長", "133086"),
        ("西多摩郡奥多摩町長", "133086"),  # with the county
        ("東京都府中市長", "132063"),
        ("広島県府中市", "342084"),
        ("京都府京都市長", "261009"),
    ],
)
def test_resolves_what_the_paper_prints(typed: str, code: str) -> None:
    assert resolve_issuer(typed).code == code


def test_every_issuing_municipality_resolves_from_its_mayor_line() -> None:
    issuers = [m for m in all_municipalities() if m.kind != "ward_of_designated_city"]
    for m in issuers:
        assert resolve_issuer(f"{m.prefecture}{m.name}長").code == m.code, m
        assert resolve_issuer(m.code).code == m.code, m
    unique = [m for m in issuers if sum(o.name == m.name for o in issuers) == 1]
    assert len(unique) > 1600
    for m in unique:
        assert resolve_issuer(f"{m.name}長").code == m.code, m


def test_a_shared_name_asks_for_the_prefecture() -> None:
    with pytest.raises(IssuerNameError) as caught:
        resolve_issuer("府中市長")
    assert "東京都府中市 (132063)" in caught.value.en and "広島県府中市 (342084)" in caught.value.en
    assert "add the prefecture" in caught.value.en
    assert "都道府県名" in caught.value.ja and "東京都府中市" in caught.value.ja


@pytest.mark.parametrize(
    ("typed", "en", "ja"),
    [
        ("横浜", "names no municipality", "当たる市区町村がありません"),
        ("東京都横浜市", "names no municipality", "当たる市区町村がありません"),  # wrong prefecture
        ("神奈川県", "names no municipality", "当たる市区町村がありません"),
        ("Yokohama", "names no municipality", "当たる市区町村がありません"),
        ("123456", "not the code of any municipality", "市区町村コードはありません"),
        ("1410", "not a municipality code", "市区町村コード"),
        ("", "no issuer given", "入力されていません"),
    ],
)
def test_refuses_with_the_reason_in_both_languages(typed: str, en: str, ja: str) -> None:
    with pytest.raises(IssuerNameError) as caught:
        resolve_issuer(typed)
    assert en in caught.value.en and en in str(caught.value)
    assert ja in caught.value.ja
    assert typed in caught.value.en and typed in caught.value.ja
