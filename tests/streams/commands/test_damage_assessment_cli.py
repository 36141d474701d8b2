"""`bcl disaster survey | area | surveys` through the installed `bcl` in a subprocess, without a cluster (an entry is
acknowledged once it is in the disaster store). Each bad input is refused with one `error:` line naming what was
wrong, a non-zero exit status, and nothing applied. The dwellings are written into the ledger tables by
tests.ledger_dwellings_factory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.commands.exit_status import EXIT_ERROR, EXIT_USAGE
from tests.ledger_dwellings_factory import Dwelling, add_dwellings
from tests.streams.commands.cli_refusals import refused

BCL = Path(sys.executable).parent / "bcl"
ONAGAWA = "045811"
ZONE = [[141.435, 38.44], [141.465, 38.44], [141.465, 38.45], [141.435, 38.45], [141.435, 38.44]]


def bcl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")} | {"BCL_LOG_LEVEL": "warning"}
    return subprocess.run([str(BCL), "--data-dir", str(data_dir), "disaster", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def ok(data_dir: Path, *args: str) -> Any:
    done = bcl(data_dir, *args, "--json")
    assert done.returncode == 0 and done.stderr == "", done
    return json.loads(done.stdout)


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Path, str]:
    data_dir = tmp_path / "var"
    disaster_id = ok(data_dir, "declare", "--municipality", ONAGAWA, "--name", "令和8年宮城県沖地震", "--kind",
                     "tsunami", "--occurred-at", "2026-11-20T14:46")["disaster_id"]
    add_dwellings(data_dir, disaster_id, ONAGAWA,
                  [Dwelling(f"D{i}", 141.44 + 0.01 * i, 38.445, households=2) for i in range(5)])
    return data_dir, disaster_id


def geojson(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return str(path)


def recorded(data_dir: Path, disaster_id: str) -> tuple[Any, Any]:
    return ok(data_dir, "surveys", disaster_id), ok(data_dir, "list")["events"]


def test_survey_area_and_surveys(declared: tuple[Path, str], tmp_path: Path) -> None:
    data_dir, disaster_id = declared
    first = ok(data_dir, "survey", disaster_id, "--dwelling", "D1", "--loss-ratio", "0.05", "--surveyor", "調査 太郎",
               "--flood-depth", "below-floor", "--date", "2026-11-21")
    assert (first["level"], first["source"], first["flood_depth"], first["surveyed_on"]) == \
        ("ICHIBU_SONKAI", "SURVEY", "BELOW_FLOOR", "2026-11-21")

    zone = geojson(tmp_path, "zone.geojson", {"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [ZONE]}})
    preview = ok(data_dir, "area", disaster_id, "--municipality", ONAGAWA, "--geojson", zone, "--level", "zenkai")
    assert (preview["dwellings"], preview["households"], preview["surveyed"], preview["changes"]) == (3, 6, 1, 2)
    plain = bcl(data_dir, "area", disaster_id, "--municipality", ONAGAWA, "--geojson", zone, "--level", "ZENKAI",
                "--preview")
    assert plain.returncode == 0 and plain.stdout.startswith("inside the area: 3 dwellings, 6 households; 1 "
                                                             "surveyed one by one (kept); 2 to set to 全壊 ZENKAI")
    assert ok(data_dir, "list")["events"] == {"published": 0, "unpublished": 2}  # declared, surveyed: no more

    applied = bcl(data_dir, "area", disaster_id, "--municipality", ONAGAWA, "--geojson", zone, "--level", "ZENKAI",
                  "--apply", "--staff", "防災課 次郎", "--reason", "津波浸水区域")
    assert applied.returncode == 0, applied
    assert "2 of 3 dwellings set to 全壊 ZENKAI (from none: 2); 1 surveyed one by one kept; 1 events" in applied.stdout
    over = ok(data_dir, "area", disaster_id, "--municipality", ONAGAWA, "--geojson", zone, "--level", "ZENKAI",
              "--apply", "--staff", "防災課 次郎", "--overwrite-surveyed")
    assert (over["changed"], over["changed_from"], over["kept_surveyed"]) == (1, {"ICHIBU_SONKAI": 1}, 0)

    one = ok(data_dir, "surveys", disaster_id, "--dwelling", "D1")
    [current] = one["assessments"]
    assert (current["level"], current["source"], current["surveyed_by"]) == ("ZENKAI", "AREA", "防災課 次郎")
    assert [(c["old_level"], c["new_level"], c["source"], c["changed_by"]) for c in one["history"]] == [
        (None, "ICHIBU_SONKAI", "SURVEY", "調査 太郎"), ("ICHIBU_SONKAI", "ZENKAI", "AREA", "防災課 次郎")]
    everything = ok(data_dir, "surveys", disaster_id)
    assert [a["dwelling_id"] for a in everything["assessments"]] == ["D0", "D1", "D2"]
    text = bcl(data_dir, "surveys", disaster_id, "--dwelling", "D1")
    assert text.returncode == 0 and "ICHIBU_SONKAI → ZENKAI  AREA by 防災課 次郎" in text.stdout
    # Each read is in the audit log (dwelling ids are derived from addresses).
    reads = [json.loads(line) for line in (data_dir / "audit" / "personal-data-access.jsonl").read_text().splitlines()]
    assert [(r["action"], r["municipality_code"], r["records"]) for r in reads if r["action"] == "disaster.surveys"] \
        == [("disaster.surveys", ONAGAWA, 1), ("disaster.surveys", ONAGAWA, 3), ("disaster.surveys", ONAGAWA, 1)]


def test_each_refusal_names_the_option_and_applies_nothing(declared: tuple[Path, str], tmp_path: Path) -> None:
    data_dir, disaster_id = declared
    ok(data_dir, "survey", disaster_id, "--dwelling", "D0", "--level", "HANKAI", "--surveyor", "調査 太郎")
    before = recorded(data_dir, disaster_id)
    survey = ["survey", disaster_id, "--dwelling", "D1", "--surveyor", "調査 太郎"]
    refused(bcl(data_dir, *survey, "--loss-ratio", "1.5"), EXIT_USAGE, "'--loss-ratio'", "from 0 to 1")
    refused(bcl(data_dir, *survey, "--loss-ratio", "35"), EXIT_USAGE, "'--loss-ratio'", "not a percentage")
    refused(bcl(data_dir, *survey, "--level", "TOTAL"), EXIT_USAGE, "'--level'", "unknown damage level 'TOTAL'")
    refused(bcl(data_dir, *survey), EXIT_USAGE, "either --loss-ratio or --level")
    refused(bcl(data_dir, *survey, "--level", "HANKAI", "--loss-ratio", "0.2"), EXIT_USAGE, "either")
    refused(bcl(data_dir, "survey", disaster_id, "--dwelling", "D0", "--level", "ZENKAI", "--surveyor", "x"),
            EXIT_USAGE, "'--reason'", "assessed already (HANKAI)")
    refused(bcl(data_dir, *survey[:3], "D9", *survey[4:], "--level", "ZENKAI"), EXIT_ERROR, "no dwelling 'D9'")
    refused(bcl(data_dir, *survey, "--level", "ZENKAI", "--date", "2026-11-19"), EXIT_USAGE, "'--date'",
            "before the disaster occurred")

    area = ["area", disaster_id, "--municipality", ONAGAWA, "--level", "ZENKAI", "--apply", "--staff", "防災課"]
    bowtie = [[141.44, 38.44], [141.45, 38.45], [141.45, 38.44], [141.44, 38.45], [141.44, 38.44]]
    cases = [
        ("broken.geojson", '{"type": "Polygon", "coordinates": [[[141.44, 38.44]', ("'--geojson'", "not valid JSON")),
        ("point.geojson", {"type": "Point", "coordinates": [141.44, 38.44]}, ("unsupported GeoJSON type 'Point'",)),
        ("bowtie.geojson", {"type": "Polygon", "coordinates": [bowtie]}, ("'--geojson'", "Self-intersection")),
        ("tanabe.geojson", {"type": "Polygon", "coordinates": [[[135.37, 33.72], [135.38, 33.72], [135.38, 33.73],
                                                                 [135.37, 33.72]]]},
         ("'--geojson'", "outside municipality 045811")),
    ]
    for name, document, words in cases:
        refused(bcl(data_dir, *area, "--geojson", geojson(tmp_path, name, document)), EXIT_USAGE, *words)
    zone = geojson(tmp_path, "zone.geojson", {"type": "Polygon", "coordinates": [ZONE]})
    refused(bcl(data_dir, *area, "--geojson", str(tmp_path / "missing.geojson")), EXIT_USAGE, "'--geojson'",
            "cannot read")
    refused(bcl(data_dir, *area[:-2], "--geojson", zone), EXIT_USAGE, "--apply needs --staff")
    refused(bcl(data_dir, *area[:5], "TOTAL", *area[6:], "--geojson", zone), EXIT_USAGE, "'--level'", "TOTAL")
    refused(bcl(data_dir, *area[:3], "302066", *area[4:], "--geojson", zone), EXIT_USAGE, "'--municipality'",
            "declared for 045811, not for 302066")
    refused(bcl(data_dir, "surveys", "no-such-disaster"), EXIT_ERROR, "no disaster 'no-such-disaster'")
    assert recorded(data_dir, disaster_id) == before
