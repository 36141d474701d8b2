"""A data dir for the roster and shelter pages' tests: the staff world (tests.streams.staff_world: ledgers of 女川町
and 田辺市 built from the backup, staff accounts of each) with the 避難行動要支援者名簿 of both municipalities applied
through the roster store as the processor applies it (register records and welfare statuses), and the shipped open
data of the shelters imported."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from domain.japan_time import japan_date
from domain.shelter_stays import StayAction, StayEvent, TerminalEvent, TokenKind
from tests.factories import make_resident
from tests.platforms import make_platform
from tests.streams.staff_world import ONAGAWA, TANABE, StaffWorld, build_staff_world

# Listed people by resident code: 田辺市's (an elderly one-person household, a 身体障害者手帳 1級) and 女川町's.
TANABE_ALONE, TANABE_PHYSICAL, ONAGAWA_ALONE = f"{101:011d}", f"{102:011d}", f"{201:011d}"
SHELTER_TANABE = "E3020600189201"  # 鮎川小学校 (shipped GSI data)
SHELTER_ONAGAWA = "E0458100001111"  # 大沢安住集会所


@dataclass(frozen=True)
class RosterWorld:
    staff: StaffWorld

    @property
    def data_dir(self) -> Path:
        return self.staff.data_dir


def _person(code: str, n: int, family: str, given: str, kana: tuple[str, str], birth: dt.date,
            town: str) -> dict[str, Any]:
    resident = make_resident(code, n, household_number=f"R{n}", family_name=family, given_name=given,
                             family_name_kana=kana[0], given_name_kana=kana[1], birth_date=birth)
    resident["address"] = {**resident["address"], "town": town}
    if code == ONAGAWA:
        resident["address"] |= {"prefecture": "宮城県", "municipality": "女川町", "latitude": 38.44,
                                "longitude": 141.44}
    return resident


def build_roster_world(data_dir: Path) -> RosterWorld:
    staff = build_staff_world(data_dir)
    platform = make_platform(data_dir)
    now = dt.datetime.now(dt.UTC)
    people = [_person(TANABE, 101, "牟婁", "ハナ", ("ムロ", "ハナ"), dt.date(1938, 4, 2), "今福一丁目"),
              _person(TANABE, 102, "熊野", "太郎", ("クマノ", "タロウ"), dt.date(1975, 9, 9), "稲成町"),
              _person(ONAGAWA, 201, "牡鹿", "ウメ", ("オシカ", "ウメ"), dt.date(1936, 1, 5), "鷲神浜")]
    welfare = [{"municipality_code": TANABE, "resident_code": TANABE_PHYSICAL, "event_time": now,
                "living_at_home": True, "physical_grade": 1}]
    platform.evacuation_roster.apply(people, welfare, japan_date(now))
    with resources.as_file(resources.files("domain").joinpath("data", "shelters.csv")) as shipped:
        platform.shelters.import_csv(shipped, None, now)
    platform.disaster_store.close()
    return RosterWorld(staff)


def check_in(data_dir: Path, disaster_id: str, shelter_id: str, n: int = 1) -> list[str]:
    """Check `n` people of 田辺市's ledger in at the shelter, as a terminal's staff entry (name and birth date);
    their resident codes."""
    platform = make_platform(data_dir)
    rows = platform.disaster_ledger.residents(disaster_id, TANABE)
    keys = [(f"{r['family_name_kana']}{r['given_name_kana']}", str(r["birth_date"])) for r in rows]
    unique = [(r, k) for r, k in zip(rows, keys, strict=True) if keys.count(k) == 1][:n]
    now = dt.datetime.now(dt.UTC)
    batch = [TerminalEvent(StayEvent(str(uuid.uuid4()), StayAction.CHECK_IN, shelter_id, now, "test-terminal", i),
                           disaster_id, TokenKind.STAFF, {"kana": kana, "birth_date": birth, "staff": "受付"})
             for i, (_, (kana, birth)) in enumerate(unique, 1)]
    receipts = platform.shelters.receive(batch, now)
    platform.disaster_store.close()
    assert all(r.status.value == "APPLIED" for r in receipts), receipts
    return [r["resident_code"] for r, _ in unique]
