"""Test data for certificate PDFs: plain dicts shaped like fastavro-decoded Resident records."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from certgen.certificate_document import Issuer

MINCHO = Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf")

# Numbers that must never appear on a certificate; distinctive so a search cannot miss them.
INDIVIDUAL_NUMBERS = ("987654321018", "876543210987", "765432109876", "654321098765", "543210987654",
                      "432109876543", "321098765432")
RESIDENT_CODES = ("59130427861", "48029316750", "37918205649", "26807194538", "15796083427",
                  "04685972316", "93574861205")

ISSUER = Issuer(municipality_code="141003", municipality_name="横浜市", mayor_title="横浜市長",
                mayor_name="山中　竹春")


def seal_impression_png(text: str = "佐藤") -> bytes:
    """A round red seal impression (印影) with the family name, as a registered seal would look."""
    size = 240
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    red = (200, 30, 40, 255)
    draw.ellipse((8, 8, size - 8, size - 8), outline=red, width=10)
    font = ImageFont.truetype(str(MINCHO), 84)
    for i, ch in enumerate(text[:2]):
        draw.text((size / 2, 78 + i * 88), ch, font=font, fill=red, anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def address(**overrides: Any) -> dict[str, Any]:
    base = {"prefecture": "神奈川県", "municipality": "横浜市中区", "town": "日本大通", "block": "1番地",
            "building": None, "latitude": 35.4437, "longitude": 139.6380}
    return base | overrides


def resident(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A current resident of household 0001234 at 横浜市中区日本大通; overrides replace fields."""
    base: dict[str, Any] = {
        "municipality_code": "141003",
        "resident_code": RESIDENT_CODES[index],
        "individual_number": INDIVIDUAL_NUMBERS[index],
        "household_number": "0001234",
        "household_head_name": "佐藤\u3000健一",
        "relationship": "世帯主",
        "family_name": "佐藤",
        "given_name": "健一",
        "family_name_kana": "サトウ",
        "given_name_kana": "ケンイチ",
        "birth_date": dt.date(1978, 6, 14),
        "sex": "MALE",
        "address": address(),
        "address_set_on": dt.date(2015, 4, 1),
        "became_resident_on": dt.date(2015, 4, 1),
        "notified_on": dt.date(2015, 4, 3),
        "previous_address": "東京都千代田区丸の内一丁目1番1号",
        "registered_domicile": "東京都千代田区丸の内一丁目1番",
        "domicile_head": "佐藤\u3000健一",
        "status": "CURRENT",
        "deletion_reason": None,
        "deleted_on": None,
        "seal": None,
        "tax_records": [],
        "jpki_certificates": [],
    }
    return base | overrides


def tax_record(fiscal_year: int, **overrides: Any) -> dict[str, Any]:
    base = {"fiscal_year": fiscal_year, "income_yen": 5_234_000, "taxable_income_yen": 3_880_000,
            "tax_yen": 398_000, "tax_exempt": False, "paid_yen": 398_000, "payment_status": "PAID"}
    return base | overrides


def household_of_three() -> list[dict[str, Any]]:
    """佐藤 健一 (head, with a registered seal and two tax years), his wife and their child born here."""
    head = resident(
        0,
        seal={"registration_number": "20150423", "registered_on": dt.date(2015, 4, 23), "status": "REGISTERED",
              "impression_png": seal_impression_png()},
        tax_records=[tax_record(2025, income_yen=5_010_000, tax_yen=371_000, paid_yen=371_000),
                     tax_record(2026, paid_yen=199_000, payment_status="PARTIAL")],
    )
    wife = resident(1, relationship="妻", given_name="美咲", given_name_kana="ミサキ", birth_date=dt.date(1981, 1, 30),
                    sex="FEMALE", tax_records=[tax_record(2026, income_yen=0, taxable_income_yen=0, tax_yen=0,
                                                          tax_exempt=True, paid_yen=0, payment_status="NOT_DUE")])
    child = resident(2, relationship="子", given_name="陽菜", given_name_kana="ヒナ", birth_date=dt.date(2019, 5, 1),
                     sex="FEMALE", became_resident_on=dt.date(2019, 5, 1), address_set_on=dt.date(2019, 5, 1),
                     notified_on=dt.date(2019, 5, 7), previous_address=None)
    return [head, wife, child]


def household_of_seven() -> list[dict[str, Any]]:
    """Three generations in one household: enough members for a second page."""
    members = household_of_three()
    extra = [
        ("父", "茂", "シゲル", dt.date(1948, 9, 3), "MALE"),
        ("母", "和子", "カズコ", dt.date(1950, 2, 11), "FEMALE"),
        ("子", "大翔", "ヒロト", dt.date(2021, 8, 20), "MALE"),
        ("同居人", "一郎", "イチロウ", dt.date(1989, 1, 7), "MALE"),
    ]
    for i, (rel, given, kana, born, sex) in enumerate(extra, start=3):
        members.append(resident(i, relationship=rel, given_name=given, given_name_kana=kana, birth_date=born,
                                sex=sex, previous_address="大阪府大阪市北区梅田三丁目1番3号"))
    members[6]["family_name"], members[6]["family_name_kana"] = "高橋", "タカハシ"
    return members
