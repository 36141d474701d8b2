"""Damage assessment against real parts: the installed `bcl` in subprocesses, the SQLite store on disk, the embedded
cluster. An area registration is one transaction: a process dying in the middle of it (at the crash point inside
the transaction, or SIGKILLed at any moment) leaves all of it or nothing. Surveys and areas reach
bcl.disaster.assessments through the disaster relay, as DwellingAssessment events."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra import topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from tests.ledger_dwellings_factory import add_dwellings, grid_dwellings
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"
SERDE = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_ASSESSMENTS])
ONAGAWA = "045811"
# The whole of 女川町's towns; the dwellings are spread over the inner box.
EVERYWHERE = {"type": "Polygon", "coordinates": [[[141.40, 38.38], [141.62, 38.38], [141.62, 38.49],
                                                  [141.40, 38.49], [141.40, 38.38]]]}


def environment(data_dir: Path, cluster: ClusterHandle | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning", **extra}
    if cluster is not None:
        env["BCL_BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
    return env


def bcl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "disaster", *args], capture_output=True, text=True, env=env, timeout=300)


def declare_with_dwellings(env: dict[str, str], count: int) -> str:
    done = bcl(env, "declare", "--municipality", ONAGAWA, "--name", "令和8年宮城県沖地震", "--kind", "tsunami",
               "--occurred-at", "2026-11-20T14:46")
    assert done.returncode == 0, done
    disaster_id = done.stdout.strip()
    add_dwellings(Path(env["BCL_DATA_DIR"]), disaster_id, ONAGAWA,
                  grid_dwellings(ONAGAWA, count, 141.42, 38.40, 141.60, 38.47))
    return disaster_id


def store_file(env: dict[str, str]) -> Path:
    return Path(env["BCL_DATA_DIR"]) / "disaster" / "store.sqlite3"


def written(env: dict[str, str]) -> tuple[int, int, int, int]:
    """(current rows, history rows, areas, assessment events) in the store."""
    con = sqlite3.connect(store_file(env))
    try:
        counts = [con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("dwelling_surveys", "dwelling_survey_history", "disaster_areas")]
        (events,) = con.execute("SELECT count(*) FROM outbox WHERE topic=?", (topics.DISASTER_ASSESSMENTS,)).fetchone()
        return counts[0], counts[1], counts[2], events
    finally:
        con.close()


def area_args(disaster_id: str, zone: Path, level: str = "ZENKAI") -> list[str]:
    return ["area", disaster_id, "--municipality", ONAGAWA, "--geojson", str(zone), "--level", level, "--apply",
            "--staff", "防災課 次郎"]


def test_a_crash_inside_the_area_transaction_leaves_nothing(tmp_path: Path) -> None:
    env = environment(tmp_path / "var")
    disaster_id = declare_with_dwellings(env, 2_000)
    zone = tmp_path / "zone.geojson"
    zone.write_text(json.dumps(EVERYWHERE))
    assert bcl(env, "surveys", disaster_id).returncode == 0  # the tables exist
    crashed = bcl(env | {"BCL_CRASH_POINT": "damage_assessment.mid_area"}, *area_args(disaster_id, zone))
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed
    assert written(env) == (0, 0, 0, 0)  # the current rows were written before the crash, and rolled back

    done = bcl(env, *area_args(disaster_id, zone), "--json")
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["changed"] == 2_000 and written(env) == (2_000, 2_000, 1, 1)


def test_sigkill_during_an_area_registration_leaves_all_or_nothing(tmp_path: Path) -> None:
    env = environment(tmp_path / "var")
    count = 30_000
    disaster_id = declare_with_dwellings(env, count)
    zone = tmp_path / "zone.geojson"
    zone.write_text(json.dumps(EVERYWHERE))
    assert bcl(env, "surveys", disaster_id, "--dwelling", "none").returncode == 0
    outcomes = []
    expected_areas = 0
    for delay in (0.5, 1.5, 2.5, 3.5, 5.0):
        # Each round sets a different level, so that a completed round changes every dwelling again.
        level = ("ZENKAI", "HANKAI")[len(outcomes) % 2]
        process = subprocess.Popen([str(BCL), "disaster", *area_args(disaster_id, zone, level)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        finished = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        current, history, areas, events = written(env)
        applied = areas - expected_areas
        assert applied in (0, 1), (delay, areas)
        expected_areas = areas
        # All or nothing: every dwelling has a row and a history row per applied area, 3 events per area.
        assert (current, history, events) == ((count if areas else 0), count * areas, 3 * areas), (delay, areas)
        outcomes.append("applied" if applied else "nothing")
        if finished:
            break
    assert "nothing" in outcomes, outcomes  # at least one kill landed before the commit


def test_surveys_and_areas_are_published_by_the_relay(cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(tmp_path / "var", cluster)
    disaster_id = declare_with_dwellings(env, 50)
    zone = tmp_path / "zone.geojson"
    zone.write_text(json.dumps(EVERYWHERE))
    surveyed = bcl(env, "survey", disaster_id, "--dwelling", f"{ONAGAWA}-0000007", "--loss-ratio", "0.25",
                   "--surveyor", "調査 太郎", "--flood-depth", "above-floor")
    assert surveyed.returncode == 0, surveyed
    applied = bcl(env, *area_args(disaster_id, zone), "--reason", "津波浸水区域")
    assert applied.returncode == 0, applied

    relayed = bcl(env, "relay", "--until-published")
    assert relayed.returncode == 0, relayed
    assert json.loads(relayed.stdout)["published"] == 3  # the declaration, the survey, the area

    mine: list[tuple[bytes, dict[str, Any]]] = [
        (m.key(), SERDE.decode(m.value())) for m in read_topic(cluster.bootstrap_servers, topics.DISASTER_ASSESSMENTS)
        if m.key() == disaster_id.encode()]
    [(_, survey), (_, area)] = sorted(mine, key=lambda found: found[1]["sequence"])
    assert (survey["source"], survey["dwelling_ids"], survey["level"], survey["loss_ratio"], survey["flood_depth"]) \
        == ("SURVEY", [f"{ONAGAWA}-0000007"], "HANKAI", "0.25", "ABOVE_FLOOR")
    assert (area["source"], area["level"], area["reason"], area["part"], area["parts"], len(area["dwelling_ids"])) \
        == ("AREA", "ZENKAI", "津波浸水区域", 1, 1, 49)  # the surveyed dwelling kept its survey
    assert f"{ONAGAWA}-0000007" not in area["dwelling_ids"]
