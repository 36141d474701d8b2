"""What staff enter on a person of the 被災者台帳 (docs/domain.md §6.1), beside what the register gives: 連絡先,
要配慮者 with the reason, 提供同意 (consent to give the ledger's information to a named recipient, and when), and
notes. Each is kept as one text item of the person (sinks.disaster_ledger `ledger_staff_items`); an item left
empty is removed. And the search of a ledger the staff pages offer: by kana, address, damage level, 要配慮者 and
flags."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from domain.damage_levels import DamageLevel
from domain.disaster_ledger import LedgerFlag
from domain.errors import InvalidArgumentError


@dataclass(frozen=True)
class StaffItem:
    name: str
    japanese: str
    max_chars: int
    multiline: bool = False


CONTACT = StaffItem("contact", "連絡先", 200)
VULNERABLE = StaffItem("vulnerable_reason", "要配慮者（理由）", 200)
CONSENT_RECIPIENT = StaffItem("consent_recipient", "提供同意の提供先", 200)
CONSENT_ON = StaffItem("consent_on", "提供同意の日付", 10)
NOTES = StaffItem("notes", "備考", 2000, multiline=True)
STAFF_ITEMS = (CONTACT, VULNERABLE, CONSENT_RECIPIENT, CONSENT_ON, NOTES)


def staff_item_values(form: Mapping[str, str], today: dt.date) -> dict[str, str | None]:
    """The items of a saved form, checked: each one line (notes may have lines), not over its length; the consent
    date a day not after today, and given together with its recipient. None: the item is cleared."""
    values: dict[str, str | None] = {}
    for item in STAFF_ITEMS:
        raw = form.get(item.name, "")
        text = "\n".join(" ".join(line.split()) for line in raw.strip().splitlines()) if item.multiline \
            else " ".join(raw.split())
        if len(text) > item.max_chars:
            raise InvalidArgumentError(item.name, f"{item.japanese}: at most {item.max_chars} characters, "
                                                  f"got {len(text)}")
        values[item.name] = text or None
    if values[CONSENT_ON.name] is not None:
        try:
            day = dt.date.fromisoformat(values[CONSENT_ON.name] or "")
        except ValueError:
            raise InvalidArgumentError(CONSENT_ON.name, f"{CONSENT_ON.japanese}: a day as YYYY-MM-DD, got "
                                                        f"{values[CONSENT_ON.name]!r}") from None
        if day > today:
            raise InvalidArgumentError(CONSENT_ON.name, f"{CONSENT_ON.japanese}: {day} is in the future")
    if (values[CONSENT_ON.name] is None) != (values[CONSENT_RECIPIENT.name] is None):
        raise InvalidArgumentError(CONSENT_RECIPIENT.name, "提供同意: the recipient and the day go together")
    return values


def kana_key(text: str) -> str:
    """Kana as compared by the search: NFKC (half-width to full-width), hiragana as katakana, no spaces."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in folded if not c.isspace())


@dataclass(frozen=True)
class LedgerSearch:
    """What staff search a ledger by; every criterion given must hold (empty: all rows)."""

    kana: str = ""
    address: str = ""
    level: DamageLevel | None = None
    unassessed: bool = False  # dwellings without a level yet
    vulnerable: bool = False
    flag: LedgerFlag | None = None

    def matches(self, kana: str, addresses: tuple[str, ...], level: DamageLevel | None, vulnerable: bool,
                flags: frozenset[str]) -> bool:
        if self.kana and kana_key(self.kana) not in kana_key(kana):
            return False
        if self.address:
            wanted = unicodedata.normalize("NFKC", self.address).replace(" ", "")
            if not any(wanted in unicodedata.normalize("NFKC", a).replace(" ", "") for a in addresses):
                return False
        if self.level is not None and level is not self.level:
            return False
        if self.unassessed and level is not None:
            return False
        if self.vulnerable and not vulnerable:
            return False
        return self.flag is None or self.flag.value in flags


def ledger_search(form: Mapping[str, str]) -> LedgerSearch:
    """The search form's fields (kana, address, level — a level code or "none" —, vulnerable, flag), checked."""
    level_text = form.get("level", "").strip()
    flag_text = form.get("flag", "").strip()
    try:
        level = DamageLevel(level_text) if level_text and level_text != "none" else None
    except ValueError:
        raise InvalidArgumentError("level", f"{level_text!r} is not a damage level") from None
    try:
        flag = LedgerFlag(flag_text) if flag_text else None
    except ValueError:
        raise InvalidArgumentError("flag", f"{flag_text!r} is not a ledger flag") from None
    kana, address = form.get("kana", "").strip()[:100], form.get("address", "").strip()[:200]
    return LedgerSearch(kana, address, level, level_text == "none", form.get("vulnerable") == "1", flag)
