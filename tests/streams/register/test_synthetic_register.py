from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image

from domain.codes import is_valid_individual_number, is_valid_resident_code
from streams.register.errors import RegisterError
from streams.register.reference import ReferenceData
from streams.register.synthetic import SyntheticRegister, build_register
from streams.register.tax import assess

DAYS_PER_YEAR = 365.2425
SETAGAYA = "131121"
AS_OF = date(2026, 3, 1)  # the as_of fixture, used in helpers below


def _age(record: dict[str, Any], on: date = AS_OF) -> float:
    return (on - record["birth_date"]).days / DAYS_PER_YEAR


def _digest(register: SyntheticRegister, encode: Callable[[str, dict[str, Any]], bytes]) -> str:
    h = hashlib.sha256()
    for record in register.records:
        h.update(encode("resident", record))
    return h.hexdigest()


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    make_register: Callable[..., SyntheticRegister], encode: Callable[[str, dict[str, Any]], bytes]
) -> None:
    first = _digest(make_register(population=800, seed=3), encode)
    assert first == _digest(make_register(population=800, seed=3), encode)
    assert first != _digest(make_register(population=800, seed=4), encode)


def test_the_as_of_constant_matches_the_fixture(as_of: date) -> None:
    assert as_of == AS_OF


def test_every_record_encodes_and_has_exactly_the_schema_fields(
    register_5000: SyntheticRegister, schemas: dict[str, Any], encode: Callable[[str, dict[str, Any]], bytes]
) -> None:
    field_names = [f["name"] for f in schemas["resident"]["fields"]]
    assert len(register_5000.records) == 5000
    for record in register_5000.records:
        assert list(record) == field_names
        assert encode("resident", record)


def test_codes_are_valid_and_unique(register_5000: SyntheticRegister) -> None:
    records = register_5000.records
    codes = [r["resident_code"] for r in records]
    numbers = [r["individual_number"] for r in records]
    serials = [c["serial"] for r in records for c in r["jpki_certificates"]]
    seals = [r["seal"]["registration_number"] for r in records if r["seal"]]
    for values in (codes, numbers, serials, seals):
        assert len(set(values)) == len(values)
    assert all(is_valid_resident_code(c) for c in codes)
    assert all(is_valid_individual_number(n) for n in numbers)
    assert all(len(s) == 16 and s == s.lower() and int(s, 16) >= 0 for s in serials)
    assert all(r["municipality_code"] == SETAGAYA for r in records)


def test_household_sizes_follow_the_census(register_5000: SyntheticRegister) -> None:
    sizes = Counter(len(members) for members in register_5000.households.values())
    total = sum(sizes.values())
    share = {k: sizes[k] / total for k in (1, 2, 3, 4)}
    assert abs(share[1] - 0.38) < 0.04
    assert abs(share[2] - 0.28) < 0.04
    assert abs(share[3] - 0.17) < 0.03
    assert abs(share[4] - 0.12) < 0.03
    assert abs(sum(v for k, v in sizes.items() if k >= 5) / total - 0.05) < 0.02


def test_ages_follow_an_ageing_population(register_5000: SyntheticRegister) -> None:
    ages = [_age(r) for r in register_5000.records]
    assert 0.24 < sum(a >= 65 for a in ages) / len(ages) < 0.33
    assert 0.09 < sum(a < 15 for a in ages) / len(ages) < 0.16
    assert max(ages) < 106


def test_households_are_consistent(register_5000: SyntheticRegister) -> None:
    by_code = {r["resident_code"]: r for r in register_5000.records}
    for number, codes in register_5000.households.items():
        members = [by_code[c] for c in codes]
        head = members[0]
        assert head["relationship"] == "世帯主"
        assert [m["relationship"] for m in members].count("世帯主") == 1
        head_name = f"{head['family_name']}\u3000{head['given_name']}"
        for m in members:
            assert m["household_number"] == number
            assert m["household_head_name"] == head_name
            assert m["address"] == head["address"]
            rel = m["relationship"]
            if rel != "同居人":
                assert m["family_name"] == head["family_name"]
            if rel in ("妻", "母", "姉", "妹", "子の妻"):
                assert m["sex"] == "FEMALE"
            if rel in ("夫", "父", "兄", "弟"):
                assert m["sex"] == "MALE"
            if rel in ("子", "弟", "妹"):
                assert m["birth_date"] >= head["birth_date"], (rel, m["birth_date"], head["birth_date"])
            if rel in ("父", "母", "兄", "姉"):
                assert m["birth_date"] <= head["birth_date"]
            if rel == "子" and "妻" in [x["relationship"] for x in members]:
                wife = next(x for x in members if x["relationship"] == "妻")
                assert _age(wife) - _age(m) >= 15  # mothers are grown-ups


def test_dates_are_ordered_and_before_the_load(register_5000: SyntheticRegister) -> None:
    for r in register_5000.records:
        assert r["birth_date"] <= r["became_resident_on"] <= r["address_set_on"] <= r["notified_on"] < AS_OF
        assert (r["previous_address"] is None) == (r["address_set_on"] == r["birth_date"])
        assert r["status"] == "CURRENT" and r["deletion_reason"] is None and r["deleted_on"] is None
        assert (r["registered_domicile"] is None) == (r["domicile_head"] is None)
        assert r["address"]["town"] and r["address"]["block"].endswith("号")


def test_family_names_follow_a_zipf_like_frequency(register_5000: SyntheticRegister, reference: ReferenceData) -> None:
    heads = [r["family_name"] for r in register_5000.records if r["relationship"] == "世帯主"]
    counts = Counter(heads)
    top = reference.family_names[0].kanji
    assert 0.007 < counts[top] / len(heads) < 0.03
    ranks = {n.kanji: i for i, n in enumerate(reference.family_names)}
    assert sum(ranks[n] < 50 for n in heads) > sum(ranks[n] >= 449 for n in heads) * 2


def test_seals_cards_and_taxes_have_realistic_shares(register_5000: SyntheticRegister) -> None:
    records = register_5000.records
    adults = [r for r in records if _age(r) >= 18]
    sealed = [r for r in records if r["seal"]]
    assert all(_age(r) >= 18 for r in sealed)
    assert 0.40 < len(sealed) / len(adults) < 0.50
    with_card = [r for r in records if any(c["kind"] == "CARD" for c in r["jpki_certificates"])]
    assert 0.76 < len(with_card) / len(records) < 0.84
    phones = [r for r in records if any(c["kind"] == "SMARTPHONE" for c in r["jpki_certificates"])]
    assert 0.10 < len(phones) / len(with_card) < 0.20
    for r in with_card:
        card = r["jpki_certificates"][0]
        assert card["kind"] == "CARD"
        nb = card["not_before"]
        if (nb.month, nb.day) == (2, 29):
            assert card["not_after"] == date(nb.year + 5, 2, 27)
        else:
            assert card["not_after"] == nb.replace(year=nb.year + 5) - timedelta(days=1)
        assert r["birth_date"] <= card["not_before"] < AS_OF <= card["not_after"] + timedelta(days=2)
    taxed = [r for r in records if r["tax_records"]]
    assert all(_age(r) >= 18 for r in taxed)
    assert 0.55 < len(taxed) / len(adults) < 0.9
    for r in taxed:
        years = [t["fiscal_year"] for t in r["tax_records"]]
        assert years == sorted(years) and years[-1] == 2025 and len(years) <= 3
        for t in r["tax_records"]:
            a = assess(t["income_yen"])
            assert (t["taxable_income_yen"], t["tax_yen"], t["tax_exempt"]) == (
                a.taxable_income_yen, a.tax_yen, a.tax_exempt)
            assert t["tax_exempt"] == (t["tax_yen"] == 0)
            assert 0 <= t["paid_yen"] <= t["tax_yen"]
            assert (t["payment_status"] == "PAID") == (t["paid_yen"] == t["tax_yen"] > 0)
    exempt_share = sum(t["tax_exempt"] for r in taxed for t in r["tax_records"]) / sum(
        len(r["tax_records"]) for r in taxed)
    assert 0.05 < exempt_share < 0.4


def test_seal_impressions_are_small_red_pngs_cached_per_family_name(register_5000: SyntheticRegister) -> None:
    seals = [r for r in register_5000.records if r["seal"]]
    by_family: dict[str, bytes] = {}
    for r in seals:
        png = r["seal"]["impression_png"]
        assert by_family.setdefault(r["family_name"], png) is png
        assert 200 < len(png) < 1500
    pixels = np.asarray(Image.open(io.BytesIO(seals[0]["seal"]["impression_png"])).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 100) & (pixels[..., 2] < 100)
    white = pixels.min(axis=2) > 240
    assert red.sum() > 100 and white.sum() > red.sum()


def test_municipalities_without_population_need_an_override(reference: ReferenceData, font_path) -> None:
    with pytest.raises(RegisterError, match="no population"):
        build_register(reference, "221384", seed=1, as_of=AS_OF, font_path=font_path)
    register = build_register(reference, "221384", seed=1, as_of=AS_OF, font_path=font_path, population=50)
    assert len(register.records) == 50
    assert {r["address"]["municipality"] for r in register.records} == {"浜松市中央区"}


def test_county_towns_write_the_county_in_the_address(make_register: Callable[..., SyntheticRegister]) -> None:
    register = make_register(population=30, code="045811")
    assert {r["address"]["municipality"] for r in register.records} == {"牡鹿郡女川町"}
    assert {r["address"]["prefecture"] for r in register.records} == {"宮城県"}
