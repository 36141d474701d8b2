from __future__ import annotations

import pytest

from domain.errors import ReferenceDataError, UnknownMunicipalityError
from domain.reference_data import read_rows
from streams.register.reference import COMMON_TOWN_NAMES, ReferenceData


def test_municipalities_keep_their_codes_as_text_and_exclude_the_northern_territories(
    reference: ReferenceData,
) -> None:
    sapporo = reference.municipality("011002")
    assert (sapporo.name, sapporo.prefecture, sapporo.kind) == ("札幌市", "北海道", "designated_city")
    assert sapporo.population == 1960668
    assert len(reference.municipalities) == 1918 - 6
    with pytest.raises(UnknownMunicipalityError, match="016951"):
        reference.municipality("016951")  # 色丹村, population 0
    assert reference.municipality("221384").population is None  # 浜松市中央区: no 2022 figure
    onagawa = reference.municipality("045811")
    assert onagawa.full_name == "牡鹿郡女川町"


def test_names_are_split_by_sex_with_readings(reference: ReferenceData) -> None:
    assert reference.family_names[0].kanji == "佐藤"
    assert reference.family_names[0].kana == "サトウ"
    assert len(reference.male_given_names) == 2537
    assert len(reference.female_given_names) == 10671


def test_sample_towns_are_preferred(reference: ReferenceData) -> None:
    towns = reference.towns_for("141046")
    assert len(towns) == 258
    assert towns[0].name == "相生町一丁目"
    # 田辺市 上屋敷町 has no coordinates in the sample: it takes the city's representative point.
    tanabe = reference.municipality("302066")
    kamiyashiki = next(t for t in reference.towns_for("302066") if t.name == "上屋敷町")
    assert (kamiyashiki.lat, kamiyashiki.lon) == (tanabe.lat, tanabe.lon)


def test_municipalities_without_sample_towns_get_common_names_near_their_point(reference: ReferenceData) -> None:
    sendai_aoba = reference.municipality("041017")
    towns = reference.towns_for(sendai_aoba.code)
    assert len(towns) == len(COMMON_TOWN_NAMES) * 5
    assert {t.name for t in towns} >= {"本町一丁目", "中央五丁目", "北町三丁目"}
    assert all(abs(t.lat - sendai_aoba.lat) <= 0.0135 and abs(t.lon - sendai_aoba.lon) <= 0.0135 for t in towns)
    assert len({(t.lat, t.lon) for t in towns}) == len(towns)
    assert towns == reference.towns_for(sendai_aoba.code)  # deterministic


def test_a_missing_or_malformed_file_is_named() -> None:
    with pytest.raises(ReferenceDataError, match=r"nowhere\.csv"):
        read_rows("nowhere.csv", {"code"})
    with pytest.raises(ReferenceDataError, match=r"towns_sample\.csv lacks the columns no_such_column"):
        read_rows("towns_sample.csv", {"no_such_column"})
