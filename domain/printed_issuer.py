"""Which municipality issued a certificate, from what a person reads on its front. Pure: no I/O.

The front prints no municipality code: it prints the certifying mayor (横浜市長　山中　竹春), the mayor's
seal (横浜市長之印) and, on most kinds, the resident's address (神奈川県横浜市中区…). So a person names the
issuer by any of those as printed — 横浜市長, 横浜市長　山中　竹春, 横浜市長之印, 横浜市, 神奈川県横浜市,
横浜市中区 (a designated city's ward: the certificate is the city's) — or, if they have it, by the 6-digit
municipality code (or its first 5 digits, without the check digit).

Twenty-odd names belong to more than one municipality (府中市 is in 東京都 and 広島県); the mayor's line
does not say which, so for those the prefecture (the start of the address line) is asked for rather
than guessed. Errors carry the reason in Japanese and English.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from domain.errors import BclError
from domain.municipalities import BILLING_KINDS, Municipality, all_municipalities, municipality

_WARD = "ward_of_designated_city"
# What follows the municipality's name on the mayor's line and the seal.
_MAYOR = "長"
_SEAL_SUFFIX = "之印"

EXAMPLE_JA = "横浜市長、世田谷区長、神奈川県横浜市、または6桁の市区町村コード 141003"
EXAMPLE_EN = "横浜市長, 世田谷区長, 神奈川県横浜市, or the 6-digit municipality code 141003"


class IssuerNameError(BclError, LookupError):
    """The typed issuer names no municipality, or more than one; `ja` says so in Japanese."""

    def __init__(self, en: str, ja: str) -> None:
        super().__init__(en)
        self.en = en
        self.ja = ja


@cache
def _issuers() -> tuple[Municipality, ...]:
    """The municipalities that issue certificates: not a designated city's wards (the city does)."""
    return tuple(m for m in all_municipalities() if m.kind in BILLING_KINDS)


@cache
def _prefectures() -> tuple[str, ...]:
    # Longest first, so that a prefecture is never cut short by a shorter one it starts with.
    return tuple(sorted({m.prefecture for m in all_municipalities()}, key=len, reverse=True))


@cache
def _city_of_ward() -> dict[str, Municipality]:
    """Ward code -> its designated city (a ward's name starts with its city's, 横浜市中区 -> 横浜市)."""
    cities = [m for m in all_municipalities() if m.kind == "designated_city"]
    return {ward.code: city for ward in all_municipalities() if ward.kind == _WARD
            for city in cities if ward.prefecture == city.prefecture and ward.name.startswith(city.name)}


@cache
def _ward_names() -> dict[str, tuple[str, ...]]:
    """Designated city code -> the names of its wards."""
    names: dict[str, list[str]] = {}
    for ward in all_municipalities():
        if (city := _city_of_ward().get(ward.code)) is not None:
            names.setdefault(city.code, []).append(ward.name)
    return {code: tuple(found) for code, found in names.items()}


def _label(m: Municipality) -> str:
    return f"{m.prefecture}{m.full_name} ({m.code})"


def _by_code(digits: str, shown: str) -> Municipality:
    if len(digits) == 5:  # the code without its check digit, as some lists print it
        found = next((m for m in all_municipalities() if m.code.startswith(digits)), None)
        code = found.code if found else digits
    elif len(digits) == 6:
        code = digits
    else:
        raise IssuerNameError(f"«{shown}» is not a municipality code (6 digits, e.g. 141003)",
                              f"「{shown}」は市区町村コード（6桁、例: 141003）ではありません")
    try:
        found = municipality(code)
    except LookupError:
        raise IssuerNameError(f"«{shown}» is not the code of any municipality",
                              f"「{shown}」に当たる市区町村コードはありません") from None
    return _city_of_ward().get(found.code, found)


@cache
def _by_name() -> dict[str, tuple[Municipality, ...]]:
    """Printed name -> the issuers of that name, each under its name and its name with the county."""
    found: dict[str, list[Municipality]] = {}
    for m in _issuers():
        for name in {m.name, m.full_name}:
            found.setdefault(name, []).append(m)
    return {name: tuple(ms) for name, ms in found.items()}


def _named(compact: str) -> list[Municipality]:
    """The issuers whose printed name (with or without its county) starts the text and is followed by
    nothing, by 長 (the mayor's line and seal), or — for a designated city — by one of its wards.
    The longest such name wins (長野市長 is 長野市, not a 長野 followed by more)."""
    for length in range(len(compact), 0, -1):
        rest = compact[length:]
        found = [m for m in _by_name().get(compact[:length], ())
                 if not rest or rest.startswith(_MAYOR)
                 or any(compact.startswith(ward) for ward in _ward_names().get(m.code, ()))]
        if found:
            return found
    return []


def resolve_issuer(text: str) -> Municipality:
    """The municipality that issued a certificate, from its name as printed on the front (横浜市長 …)
    or its code. IssuerNameError when it names none, or several without the prefecture."""
    # NFKC: full-width digits and letters as typed on a Japanese keyboard; spaces (the ideographic
    # space between the mayor's title and name) carry nothing.
    compact = "".join(unicodedata.normalize("NFKC", text).split())
    shown = text.strip()
    if not compact:
        raise IssuerNameError("no issuer given", "発行者が入力されていません")
    if compact.isdigit():
        return _by_code(compact, shown)
    if compact.endswith(_MAYOR + _SEAL_SUFFIX):
        compact = compact[: -len(_SEAL_SUFFIX)]
    prefecture = next((p for p in _prefectures() if compact.startswith(p) and len(compact) > len(p)), None)
    found = _named(compact[len(prefecture):] if prefecture else compact)
    if prefecture is not None:
        found = [m for m in found if m.prefecture == prefecture]
    if len(found) == 1:
        return found[0]
    if not found:
        raise IssuerNameError(
            f"«{shown}» names no municipality (type it as printed beside the mayor's seal, e.g. {EXAMPLE_EN})",
            f"「{shown}」に当たる市区町村がありません"
            f"（証明書の公印の横の表記のとおりに入力してください。例: {EXAMPLE_JA}）")
    labels = ", ".join(_label(m) for m in found)
    example = f"{found[0].prefecture}{found[0].name}"
    raise IssuerNameError(
        f"«{shown}» is the name of {len(found)} municipalities ({labels}): add the prefecture from the address "
        f"line, e.g. {example}",
        f"「{shown}」という市区町村は{len(found)}つあります（{labels.replace(', ', '、')}）。住所欄の都道府県名を"
        f"付けて入力してください（例: {example}）")
