"""The disaster benches' world: 女川町's synthetic register as the backup and an earthquake declared a day after its
full load, its ledger built from that backup into the platform's disaster store (untimed set-up)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from domain.disasters import Disaster, declaration
from domain.japan_time import JST
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.sinks.history_factory import append_events

ONAGAWA = "045811"
START = dt.datetime(2026, 11, 9, tzinfo=JST)


def declared_onagawa(platform: Platform, population: int) -> tuple[Disaster, list[dict[str, Any]]]:
    """The declared disaster and the full load's events (their `after` is each resident's record)."""
    return declared(platform, ONAGAWA, population)


def declared(platform: Platform, municipality_code: str, population: int) -> tuple[Disaster, list[dict[str, Any]]]:
    """declared_onagawa for another municipality of the reference data."""
    sim = RegisterSimulator(load_reference_data(), municipality_code, population=population, seed=3, start=START,
                            font_path=platform.settings.mincho_font)
    load = list(sim.full_load())
    append_events(platform.snapshot_store, municipality_code, load, 50_000)
    now = dt.datetime.now(dt.UTC)
    disaster, _ = platform.disaster_ledger.declare(
        declaration(name="ベンチ地震", kind="earthquake", municipality_codes=[municipality_code],
                    occurred_at=START + dt.timedelta(days=1), now=now), now)
    return disaster, load
