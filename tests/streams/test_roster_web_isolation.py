"""The roster and shelter pages through aiohttp's client, against the real stores of a data dir: a staff member of
女川町 (045811) asking by URL for 田辺市's (302066) listed person, plan, PDF, shelter or a disaster not declared for
女川町 is answered 404, writes nothing and is audited; a POST without its CSRF token is refused (403) and writes
nothing; the search shows the member's municipality only; the CSV and the PDFs (read back by pdftotext) carry the
list's legal items; every read and change is in the audit log with the member as the actor."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certgen.verification_csrf import FIELD
from certgen.verification_limits import VerificationLimits
from tests.platforms import make_platform
from tests.streams.roster_world import (
    ONAGAWA_ALONE,
    SHELTER_ONAGAWA,
    SHELTER_TANABE,
    TANABE_ALONE,
    TANABE_PHYSICAL,
    RosterWorld,
    build_roster_world,
)
from tests.streams.test_staff_web_isolation import client, page_token, sign_in
from tests.web_fixtures import served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> RosterWorld:
    return build_roster_world(tmp_path_factory.mktemp("roster-web") / "data")


@pytest.fixture(scope="module")
def server(world: RosterWorld) -> Iterator[str]:
    platform = make_platform(world.data_dir)
    with served(platform.staff_web(sign_in_limits=VerificationLimits(burst=1000))) as url:
        yield url
    platform.disaster_store.close()


def audit(world: RosterWorld, action: str, actor: str) -> list[dict[str, Any]]:
    path = world.data_dir / "audit" / "personal-data-access.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    return [e for e in lines if e["action"] == action and e["actor"] == actor]


def written(world: RosterWorld) -> dict[str, int]:
    """How many rows the changes the pages can make have written (their own connection)."""
    platform = make_platform(world.data_dir)
    assert platform.evacuation_plans and platform.shelters  # their tables, made on first use
    con = platform.disaster_store.connection
    counts = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("roster_consents", "roster_contacts", "roster_plans", "shelter_openings")}
    counts["capacities"] = con.execute("SELECT count(*) FROM shelters WHERE capacity_day IS NOT NULL").fetchone()[0]
    platform.disaster_store.close()
    return counts


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


PLAN = {"supporter_name_1": "熊野\u3000次郎", "supporter_relation_1": "長男", "supporter_phone_1": "0739-22-0001",
        "shelter": SHELTER_TANABE, "route": "県道を北へ、橋を渡って右", "needs": "車いす"}


def test_another_municipality_is_not_found_writes_nothing_and_is_audited(world: RosterWorld, server: str) -> None:
    d, tanabe_only = world.staff.disaster_id, world.staff.tanabe_only_id
    before = written(world)

    async def scenario() -> dict[str, int]:
        async with client() as s:
            assert (await sign_in(s, server, "onagawa.abe")).status == 303
            token = await page_token(s, server)
            statuses = {}
            for path in (f"/roster/p/{TANABE_ALONE}", f"/roster/p/{TANABE_PHYSICAL}/plan.pdf"):
                async with s.get(f"{server}{path}") as r:
                    statuses[f"GET {path}"] = r.status
            for path, form in {
                    f"/roster/p/{TANABE_ALONE}/consent": {"decision": "GIVEN", "on": ""},
                    f"/roster/p/{TANABE_ALONE}/phone": {"phone": "0739-00-0000"},
                    f"/roster/p/{TANABE_ALONE}/plan": PLAN,
                    f"/shelters/{SHELTER_TANABE}/capacity": {"day": "100", "night": "50"},
                    f"/d/{d}/shelters/{SHELTER_TANABE}/open": {},
                    f"/d/{tanabe_only}/shelters/{SHELTER_ONAGAWA}/open": {}}.items():
                async with s.post(f"{server}{path}", data={**form, FIELD: token}, allow_redirects=False) as r:
                    statuses[f"POST {path}"] = r.status
            async with s.get(f"{server}/d/{tanabe_only}/shelters") as r:
                statuses["GET tanabe-only board"] = r.status
            async with s.get(f"{server}/roster") as r:
                listing = await r.text()
            assert ONAGAWA_ALONE in listing and "牡鹿" in listing
            assert TANABE_ALONE not in listing and "牟婁" not in listing and "熊野" not in listing
            async with s.get(f"{server}/d/{d}/shelters") as r:
                board = await r.text()
            assert SHELTER_ONAGAWA in board and SHELTER_TANABE not in board
            return statuses

    statuses = asyncio.run(scenario())
    assert set(statuses.values()) == {404}, statuses
    assert written(world) == before
    refused = audit(world, "staff.refused", "onagawa.abe")
    assert any(e["requested"] == f"roster person {TANABE_ALONE!r}" for e in refused)
    assert any(e["requested"] == f"shelter {SHELTER_TANABE!r}" for e in refused)
    assert any(e["requested"] == f"disaster {tanabe_only!r}" for e in refused)
    assert all(e["municipality_code"] == "045811" for e in refused)


def test_a_post_without_its_csrf_token_is_refused(world: RosterWorld, server: str) -> None:
    d = world.staff.disaster_id
    before = written(world)

    async def scenario() -> list[int]:
        async with client() as s:
            assert (await sign_in(s, server, "tanabe.sato")).status == 303
            statuses = []
            for path, form in ((f"/roster/p/{TANABE_ALONE}/consent", {"decision": "GIVEN"}),
                               (f"/roster/p/{TANABE_ALONE}/plan", PLAN),
                               (f"/shelters/{SHELTER_TANABE}/capacity", {"day": "100", "night": "50"}),
                               (f"/d/{d}/shelters/{SHELTER_TANABE}/open", {}),
                               (f"/d/{d}/shelters/{SHELTER_TANABE}/open", {FIELD: "forged"})):
                async with s.post(f"{server}{path}", data=form, allow_redirects=False) as r:
                    statuses.append(r.status)
            # The same form with its token is taken (the refusals above were the token's).
            token = await page_token(s, server)
            async with s.post(f"{server}/shelters/{SHELTER_TANABE}/capacity",
                              data={"day": "100", "night": "50", FIELD: token}, allow_redirects=False) as r:
                statuses.append(r.status)
            return statuses

    assert asyncio.run(scenario()) == [403] * 5 + [303]
    assert written(world) == {**before, "capacities": before["capacities"] + 1}


def test_csv_and_pdfs_carry_the_legal_items_and_are_audited(world: RosterWorld, server: str,
                                                            tmp_path: Path) -> None:
    async def scenario() -> tuple[str, str, bytes, bytes, int, str]:
        async with client() as s:
            assert (await sign_in(s, server, "tanabe.ito")).status == 303
            token = await page_token(s, server)
            async with s.get(f"{server}/roster/export.csv", params={"criterion": "PHYSICAL"}) as r:
                assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
                csv_text = (await r.read()).decode("utf-8-sig")
            async with s.get(f"{server}/roster/export.csv") as r:
                everyone = (await r.read()).decode("utf-8-sig")
            async with s.get(f"{server}/roster/list.pdf", params={"town": "今福一丁目"}) as r:
                assert r.headers["Content-Type"] == "application/pdf"
                listed = await r.read()
            async with s.post(f"{server}/roster/p/{TANABE_PHYSICAL}/plan", data={**PLAN, FIELD: token},
                              allow_redirects=False) as r:
                assert r.status == 303, await r.text()
            async with s.get(f"{server}/roster/p/{TANABE_PHYSICAL}/plan.pdf") as r:
                plan = await r.read()
            async with s.post(f"{server}/roster/p/{TANABE_PHYSICAL}/plan",
                              data={**PLAN, "shelter": SHELTER_ONAGAWA, FIELD: token}, allow_redirects=False) as r:
                bad_status, bad_page = r.status, await r.text()
            return csv_text, everyone, listed, plan, bad_status, bad_page

    csv_text, everyone, listed, plan, bad_status, bad_page = asyncio.run(scenario())
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("住民票コード,氏名,ふりがな,生年月日,性別,住所,電話番号,避難支援等を必要とする事由")
    assert len(lines) == 2 and TANABE_PHYSICAL in lines[1] and "身体障害者手帳1級" in lines[1]
    assert TANABE_ALONE in everyone and ONAGAWA_ALONE not in everyone
    text = pdftotext(listed, tmp_path)
    assert "避難行動要支援者名簿" in text and "田辺市" in text and "町名: 今福一丁目" in text
    assert "牟婁" in text and "熊野" not in text and "75歳以上の一人暮らし" in text
    plan_text = pdftotext(plan, tmp_path)
    assert "個別避難計画" in plan_text and "熊野" in plan_text and "鮎川小学校" in plan_text and "車いす" in plan_text
    # A shelter of another municipality as the destination: the user's mistake, one line, nothing stored.
    assert bad_status == 400 and "045811" in bad_page
    actions = {e["action"] for e in audit(world, "staff.roster.csv", "tanabe.ito")
               + audit(world, "staff.roster.pdf", "tanabe.ito") + audit(world, "staff.roster.plan.set", "tanabe.ito")
               + audit(world, "staff.roster.plan.pdf", "tanabe.ito")}
    assert actions == {"staff.roster.csv", "staff.roster.pdf", "staff.roster.plan.set", "staff.roster.plan.pdf"}
    [pdf_read] = audit(world, "staff.roster.pdf", "tanabe.ito")
    assert pdf_read["records"] == 1 and pdf_read["municipality_code"] == "302066"
