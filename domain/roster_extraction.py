"""An extraction of the 避難行動要支援者名簿 as staff ask for it (docs/domain.md §6.5): by town, criterion, consent to
share in normal times and name; from a search form (the staff pages) or the command's options, and how the printed
list names it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import InvalidArgumentError
from domain.evacuation_roster import CRITERION_NAMES, Criterion, criterion


@dataclass(frozen=True)
class RosterFilter:
    """An extraction of the list as staff ask for it (each part optional)."""

    town: str | None = None
    criterion: Criterion | None = None
    consent: bool | None = None  # True: consented to share in normal times; False: not (refused, withdrawn, unasked)
    name: str | None = None

    @property
    def selection(self) -> str:
        """How the printed list names the extraction."""
        parts = [f"町名: {self.town}" if self.town else "",
                 f"事由: {CRITERION_NAMES[self.criterion]}" if self.criterion else "",
                 "" if self.consent is None else "同意あり" if self.consent else "同意なし",
                 "氏名検索" if self.name else ""]
        return "・".join(p for p in parts if p) or "全員"


def roster_filter(form: Mapping[str, str]) -> RosterFilter:
    """The extraction of a search form (town, criterion, consent given / not-given, name)."""
    consent = form.get("consent", "").strip()
    if consent not in ("", "given", "not-given"):
        raise InvalidArgumentError("consent", f"{consent!r} is not given or not-given")
    text = form.get("criterion", "").strip()
    return RosterFilter(town=form.get("town", "").strip() or None, criterion=criterion(text) if text else None,
                        consent=None if not consent else consent == "given",
                        name=form.get("name", "").strip().replace(" ", "").replace("\u3000", "") or None)
