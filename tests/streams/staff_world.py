"""A data dir for the staff pages' tests: the registers of 女川町 (045811) and 田辺市 (302066) in the backup (the
synthetic register, a few dozen residents each), one disaster declared for both (so both ledgers are built from
the backup as of 発災日時, the real path), one declared for 田辺市 alone, and staff accounts of each
municipality."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from domain.disasters import declaration
from domain.japan_time import JST
from domain.staff_accounts import StaffRole
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.platforms import make_platform
from tests.sinks.history_factory import append_events

ONAGAWA = "045811"
TANABE = "302066"
START = dt.datetime(2026, 11, 1, tzinfo=JST)
PASSWORD = "correct horse battery staple"
# login → (municipality, role)
ACCOUNTS = {"tanabe.sato": (TANABE, StaffRole.SUPERVISOR), "tanabe.ito": (TANABE, StaffRole.CLERK),
            "tanabe.kato": (TANABE, StaffRole.CLERK), "onagawa.abe": (ONAGAWA, StaffRole.SUPERVISOR)}


@dataclass(frozen=True)
class StaffWorld:
    data_dir: Path
    disaster_id: str  # both municipalities
    tanabe_only_id: str


def build_staff_world(data_dir: Path, population: int = 40) -> StaffWorld:
    platform = make_platform(data_dir)
    reference = load_reference_data()
    for seed, code in enumerate((ONAGAWA, TANABE), 1):
        sim = RegisterSimulator(reference, code, population=population, seed=seed, start=START,
                                font_path=load_settings().mincho_font)
        append_events(platform.snapshot_store, code, list(sim.full_load()), 1000)
    now = dt.datetime.now(dt.UTC)
    occurred = START + dt.timedelta(days=1)
    disaster, builds = platform.disaster_ledger.declare(
        declaration(name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=(ONAGAWA, TANABE),
                    occurred_at=occurred, now=now), now)
    assert all(b.residents > 0 for b in builds if hasattr(b, "residents")), builds
    other, _ = platform.disaster_ledger.declare(
        declaration(name="令和8年田辺市豪雨", kind="flood", municipality_codes=(TANABE,), occurred_at=occurred,
                    now=now), now)
    for login, (code, role) in ACCOUNTS.items():
        platform.staff_accounts.add(code, login, PASSWORD, role, now)
    platform.disaster_store.close()
    return StaffWorld(data_dir, disaster.disaster_id, other.disaster_id)
