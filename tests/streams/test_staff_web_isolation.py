"""The staff pages through aiohttp's client, against the real stores of a data dir (ledgers built from the
backup): each route of a staff member of 女川町 (045811) asked for 田辺市's (302066) disaster, household, person,
dwelling or area is refused as not found, writes nothing and is audited; sign-in, sessions, CSRF, lockout."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from certgen.verification_csrf import FIELD
from certgen.verification_limits import VerificationLimits
from domain.livelihood_recovery_support import Rebuild
from domain.support_payments import Statement
from sinks.disaster_ledger import LedgerDwelling
from sinks.staff_scope import household_of
from streams.platform import Platform
from streams.staff_web import SESSION_COOKIE
from tests.platforms import make_platform
from tests.streams.card_application import apply_with_card, uncarded
from tests.streams.staff_world import ONAGAWA, PASSWORD, TANABE, StaffWorld, build_staff_world
from tests.web_fixtures import served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> StaffWorld:
    return build_staff_world(tmp_path_factory.mktemp("staff-web") / "data")


@contextmanager
def serving(world: StaffWorld, **overrides: Any) -> Iterator[str]:
    """The staff pages of the world's data dir on 127.0.0.1, from a thread with its own event loop."""
    platform = make_platform(world.data_dir)
    with served(platform.staff_web(**overrides)) as url:
        yield url
    platform.disaster_store.close()


@pytest.fixture(scope="module")
def server(world: StaffWorld) -> Iterator[str]:
    # Every test here signs in from 127.0.0.1: the rate limit of sign-ins is tested on a server of its own.
    with serving(world, sign_in_limits=VerificationLimits(burst=1000)) as url:
        yield url


def reader(world: StaffWorld) -> Platform:
    """A platform of its own on the data dir (its own connection), to look at what the server wrote."""
    return make_platform(world.data_dir)


def reader_rows(world: StaffWorld) -> list[dict[str, Any]]:
    p = reader(world)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    p.disaster_store.close()
    return rows


def tanabe_household(world: StaffWorld) -> tuple[str, str, LedgerDwelling]:
    """A household of 田辺市: its number, a member's resident code, its dwelling."""
    p = reader(world)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    dwellings = {d.dwelling_id: d for d in p.disaster_ledger.dwellings(world.disaster_id, TANABE)}
    p.disaster_store.close()
    return household_of(rows[0]), rows[0]["resident_code"], dwellings[rows[0]["dwelling_id"]]


def csrf_of(page: str) -> str:
    match = re.search(rf'name="{FIELD}" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def audit(world: StaffWorld, action: str, actor: str) -> list[dict[str, Any]]:
    path = world.data_dir / "audit" / "personal-data-access.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    return [e for e in lines if e["action"] == action and e["actor"] == actor]


def client() -> aiohttp.ClientSession:
    # unsafe: keep the cookies of an IP address (127.0.0.1)
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(session: aiohttp.ClientSession, url: str, login: str, password: str = PASSWORD
                  ) -> aiohttp.ClientResponse:
    async with session.get(f"{url}/signin") as page:
        token = csrf_of(await page.text())
    async with session.post(f"{url}/signin", data={"login": login, "password": password, FIELD: token},
                            allow_redirects=False) as response:
        await response.read()
        return response


async def page_token(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(f"{url}/") as page:
        assert page.status == 200
        return csrf_of(await page.text())


def test_each_route_refuses_another_municipality_and_audits(world: StaffWorld, server: str) -> None:
    household, resident, dwelling = tanabe_household(world)
    d = world.disaster_id
    h = quote(household, safe="")
    tanabe = f"/d/{d}/m/{TANABE}"

    async def scenario() -> dict[str, int]:
        async with client() as s:
            assert (await sign_in(s, server, "onagawa.abe")).status == 303
            token = await page_token(s, server)
            statuses = {}
            for name, path in {
                "household": f"{tanabe}/h/{h}", "extract": f"{tanabe}/h/{h}/extract.pdf",
                "other disaster": f"/d/{world.tanabe_only_id}", "other area": f"/d/{world.tanabe_only_id}/area",
                "unknown disaster": "/d/no-such-disaster",
            }.items():
                async with s.get(server + path) as r:
                    statuses[name] = r.status
                    assert r.content_type == "text/html"
            async with s.post(f"{server}{tanabe}/r/{resident}/items",
                              data={FIELD: token, "contact": "090-0000-0000"}, allow_redirects=False) as r:
                statuses["items"] = r.status
            async with s.post(f"{server}{tanabe}/w/{quote(dwelling.dwelling_id, safe='')}/survey",
                              data={FIELD: token, "level": "ZENKAI", "household": household},
                              allow_redirects=False) as r:
                statuses["survey"] = r.status
            square = {"type": "Polygon", "coordinates": [[
                [dwelling.longitude - 0.01, dwelling.latitude - 0.01], [dwelling.longitude + 0.01,
                                                                        dwelling.latitude - 0.01],
                [dwelling.longitude + 0.01, dwelling.latitude + 0.01], [dwelling.longitude - 0.01,
                                                                        dwelling.latitude + 0.01],
                [dwelling.longitude - 0.01, dwelling.latitude - 0.01]]]}
            async with s.post(f"{server}/d/{d}/area/apply", data={FIELD: token, "level": "ZENKAI",
                                                                  "geojson": json.dumps(square)}) as r:
                statuses["area"] = r.status
            return statuses

    statuses = asyncio.run(scenario())
    assert statuses == {"household": 404, "extract": 404, "other disaster": 404, "other area": 404,
                        "unknown disaster": 404, "items": 404, "survey": 404, "area": 400}, statuses
    p = reader(world)
    assert p.disaster_ledger.staff_items(d, TANABE, resident) == {}
    assert p.damage_assessment.assessments(d, dwelling.dwelling_id) == []
    p.disaster_store.close()
    refused = audit(world, "staff.refused", "onagawa.abe")
    assert len(refused) >= 7 and all(e["municipality_code"] == ONAGAWA for e in refused)
    assert any(e.get("household_number") == household for e in refused)


def test_search_lists_only_the_own_municipality_and_is_audited(world: StaffWorld, server: str) -> None:
    p = reader(world)
    tanabe = {r["resident_code"] for r in p.disaster_ledger.residents(world.disaster_id, TANABE)}
    onagawa = p.disaster_ledger.residents(world.disaster_id, ONAGAWA)
    p.disaster_store.close()

    async def scenario() -> tuple[str, str]:
        async with client() as s:
            await sign_in(s, server, "onagawa.abe")
            async with s.get(f"{server}/d/{world.disaster_id}") as r:
                everyone = await r.text()
            kana = onagawa[0]["family_name_kana"]
            async with s.get(f"{server}/d/{world.disaster_id}", params={"kana": kana}) as r:
                return everyone, await r.text()

    everyone, by_kana = asyncio.run(scenario())
    assert f'<b id="matches">{len(onagawa)}</b>' in everyone
    assert not any(code in everyone for code in tanabe)
    same_kana = sum(r["family_name_kana"] == onagawa[0]["family_name_kana"] for r in onagawa)
    assert f'<b id="matches">{same_kana}</b>' in by_kana
    searches = audit(world, "staff.ledger.search", "onagawa.abe")
    assert searches and searches[-1]["criteria"] == {"kana": onagawa[0]["family_name_kana"]}


def test_sign_in_csrf_sessions_and_lockout(world: StaffWorld, server: str) -> None:
    household, resident, _ = tanabe_household(world)

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with client() as s:
            async with s.get(f"{server}/d/{world.disaster_id}", allow_redirects=False) as r:
                seen["anonymous"] = (r.status, r.headers.get("Location"))
            seen["wrong"] = (await sign_in(s, server, "tanabe.sato", "not the password at all")).status
            seen["unknown"] = (await sign_in(s, server, "nobody.here")).status
            ok = await sign_in(s, server, "tanabe.sato")
            cookie = ok.cookies[SESSION_COOKIE]
            seen["cookie"] = (ok.status, cookie["httponly"], cookie["samesite"])
            seen["csp"] = ok.headers.get("Content-Security-Policy", "")
            async with s.post(f"{server}/d/{world.disaster_id}/m/{TANABE}/r/{resident}/items",
                              data={"contact": "forged"}, allow_redirects=False) as r:
                seen["no token"] = r.status
            async with s.post(f"{server}/d/{world.disaster_id}/m/{TANABE}/r/{resident}/items",
                              data={"contact": "forged", FIELD: "0" * 64}, allow_redirects=False) as r:
                seen["bad token"] = r.status
            token = await page_token(s, server)
            async with s.post(f"{server}/signout", data={FIELD: token},
                              allow_redirects=False) as r:
                seen["signout"] = r.status
            async with s.get(f"{server}/d/{world.disaster_id}/m/{TANABE}/h/{quote(household, safe='')}",
                             allow_redirects=False) as r:
                seen["after signout"] = r.status
        async with client() as s:
            for _ in range(5):
                await sign_in(s, server, "tanabe.ito", "wrong password number")
            seen["locked"] = (await sign_in(s, server, "tanabe.ito")).status
        return seen

    seen = asyncio.run(scenario())
    assert seen["anonymous"] == (303, "/signin")
    assert seen["wrong"] == seen["unknown"] == 401
    assert seen["cookie"] == (303, True, "Strict")
    assert "script-src" not in seen["csp"] and "default-src 'none'" in seen["csp"]
    assert seen["no token"] == seen["bad token"] == 403
    assert seen["signout"] == 303 and seen["after signout"] == 303
    assert seen["locked"] == 401  # the right password, after 5 failures in a row
    p = reader(world)
    assert "contact" not in p.disaster_ledger.staff_items(world.disaster_id, TANABE, resident)
    # The lockout is durable: a new process refuses the right password too.
    with pytest.raises(Exception, match="wrong"):
        p.staff_accounts.sign_in("tanabe.ito", PASSWORD, dt.datetime.now(dt.UTC))
    p.disaster_store.close()


def test_household_items_survey_and_extract_of_the_own_municipality(world: StaffWorld, server: str) -> None:
    household, resident, dwelling = tanabe_household(world)
    url = f"{server}/d/{world.disaster_id}/m/{TANABE}/h/{quote(household, safe='')}"

    async def scenario() -> tuple[int, str, int, bytes, int]:
        async with client() as s:
            await sign_in(s, server, "tanabe.sato")
            token = await page_token(s, server)
            async with s.post(f"{server}/d/{world.disaster_id}/m/{TANABE}/r/{resident}/items",
                              data={FIELD: token, "contact": "0739-22-0000", "vulnerable_reason": "車いす使用",
                                    "consent_recipient": "田辺市社会福祉協議会", "consent_on": "2026-11-03",
                                    "notes": "避難所Aに避難"}) as r:
                saved = r.status
            survey_url = f"{server}/d/{world.disaster_id}/m/{TANABE}/w/{quote(dwelling.dwelling_id, safe='')}/survey"
            async with s.post(survey_url,
                              data={FIELD: token, "loss_ratio": "0.45", "household": household}) as r:
                page = await r.text()
            async with s.get(f"{url}/extract.pdf") as r:
                pdf = await r.read()
                extract = r.status
            async with s.post(f"{server}/d/{world.disaster_id}/m/{TANABE}/r/{resident}/items",
                              data={FIELD: token, "consent_on": "2026-11-03"}) as r:
                half_consent = r.status
            return saved, page, extract, pdf, half_consent

    saved, page, extract, pdf, half_consent = asyncio.run(scenario())
    assert saved == 200 and 'id="saved"' in page and "車いす使用" in page
    assert '<b id="level">大規模半壊</b>' in page  # a loss ratio of 0.45 is 大規模半壊 (domain.damage_levels)
    assert extract == 200 and pdf.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, check=True, capture_output=True).stdout
    members = [r for r in reader_rows(world) if household_of(r) == household]
    printed = text.decode()
    assert "被災者台帳" in printed and household in printed and "車いす使用" in printed and "大規模半壊" in printed
    assert all(m["family_name"] in printed for m in members)
    assert not any(m["individual_number"] in printed for m in members)  # never on paper
    assert half_consent == 400
    p = reader(world)
    items = p.disaster_ledger.staff_items(world.disaster_id, TANABE, resident)
    assert items["contact"] == "0739-22-0000" and items["consent_on"] == "2026-11-03"
    [assessment] = p.damage_assessment.assessments(world.disaster_id, dwelling.dwelling_id)
    assert assessment.surveyed_by == "tanabe.sato" and assessment.level.value == "DAIKIBO_HANKAI"
    p.disaster_store.close()
    assert audit(world, "staff.household.read", "tanabe.sato")
    assert audit(world, "staff.household.extract", "tanabe.sato")
    assert audit(world, "staff.item.set", "tanabe.sato")


def test_sign_ins_are_rate_limited_per_client(world: StaffWorld) -> None:
    async def scenario(url: str) -> list[int]:
        async with client() as s:
            return [(await sign_in(s, url, "nobody.here")).status for _ in range(3)]

    with serving(world, sign_in_limits=VerificationLimits(burst=2, refill_seconds=60)) as url:
        assert asyncio.run(scenario(url)) == [401, 401, 429]


def submit(world: StaffWorld, code: str, procedure: str = "RISAI_CERTIFICATE") -> str:
    """An online application of a person of the municipality, made with a real virtual card of their certificate
    serial and verified and stored by the platform's intake (tests.streams.card_application)."""
    p = reader(world)
    person = uncarded(p, p.disaster_ledger.residents(world.disaster_id, code))
    stored = apply_with_card(p, world.disaster_id, person, procedure)
    p.disaster_store.close()
    assert stored.matched and stored.municipality_code == code, stored
    return stored.application_id


def test_applications_inbox_shows_and_decides_only_the_own_municipality(world: StaffWorld, server: str) -> None:
    tanabe, onagawa = submit(world, TANABE), submit(world, ONAGAWA)
    inbox = f"{server}/d/{world.disaster_id}/applications"

    async def scenario() -> tuple[str, int, str, int]:
        async with client() as s:
            await sign_in(s, server, "onagawa.abe")
            async with s.get(inbox) as r:
                page = await r.text()
            token = csrf_of(page)
            async with s.post(f"{inbox}/{tanabe}/decide", data={FIELD: token, "decision": "accept"},
                              allow_redirects=False) as r:
                other = r.status
        async with client() as s:
            await sign_in(s, server, "tanabe.sato")
            token = await page_token(s, server)
            async with s.post(f"{inbox}/{tanabe}/decide", data={FIELD: token, "decision": "accept"}) as r:
                return page, other, await r.text(), r.status

    onagawa_page, other, tanabe_page, status = asyncio.run(scenario())
    assert onagawa in onagawa_page and tanabe not in onagawa_page
    assert other == 404
    assert status == 200 and f'id="application-{tanabe}"' in tanabe_page and onagawa not in tanabe_page
    p = reader(world)
    decided = p.disaster_applications.application(tanabe)
    assert decided.status.value == "ACCEPTED" and decided.decided_by == "tanabe.sato"
    assert p.disaster_applications.application(onagawa).status.value == "OPEN"
    p.disaster_store.close()
    assert audit(world, "staff.applications.read", "onagawa.abe")
    assert any(e.get("requested") == f"application {tanabe!r}" for e in audit(world, "staff.refused", "onagawa.abe"))


def test_a_clerk_previews_an_area_but_only_a_supervisor_applies_it(world: StaffWorld, server: str) -> None:
    _, _, dwelling = tanabe_household(world)
    x, y, d = dwelling.longitude, dwelling.latitude, 0.001
    square = json.dumps({"type": "Polygon", "coordinates": [[[x - d, y - d], [x + d, y - d], [x + d, y + d],
                                                             [x - d, y + d], [x - d, y - d]]]})
    area = f"{server}/d/{world.disaster_id}/area"

    async def scenario() -> tuple[int, str, int]:
        async with client() as s:
            await sign_in(s, server, "tanabe.kato")
            token = await page_token(s, server)
            form = aiohttp.FormData({FIELD: token, "level": "HANKAI"})
            form.add_field("geojson", square.encode(), filename="zone.geojson", content_type="application/geo+json")
            async with s.post(f"{area}/preview", data=form) as r:
                preview = (r.status, await r.text())
            async with s.post(f"{area}/apply", data={FIELD: token, "level": "HANKAI", "geojson": square}) as r:
                return preview[0], preview[1], r.status

    status, preview, applied = asyncio.run(scenario())
    assert status == 200 and re.search(r'id="preview-dwellings">[1-9]', preview)
    assert applied == 403
    p = reader(world)
    assert all(a.level.value != "HANKAI" for a in p.damage_assessment.assessments(world.disaster_id))
    p.disaster_store.close()


def test_support_amounts_shown_paid_and_extracted_in_the_own_municipality_only(world: StaffWorld,
                                                                             server: str) -> None:
    # An accepted 被災者生活再建支援金 application of a 田辺市 household (not the one the other tests survey), its
    # dwelling 全壊 and its amount recorded.
    p = reader(world)
    rows = p.disaster_ledger.residents(world.disaster_id, TANABE)
    person = uncarded(p, [r for r in rows if r["dwelling_id"] != rows[0]["dwelling_id"]])
    application = apply_with_card(p, world.disaster_id, person, "LIVELIHOOD_RECOVERY_SUPPORT")
    now = dt.datetime.now(dt.UTC)
    p.disaster_applications.accept(application.application_id, "tanabe.sato", now)
    p.damage_assessment.survey(world.disaster_id, person["dwelling_id"], surveyor="tanabe.sato", surveyed_on=None,
                               now=now, level="ZENKAI", loss_ratio=None, reason="調査")
    granted = p.support_payments.record_amount(application.application_id, Statement(rebuild=Rebuild.REPAIR),
                                               "tanabe.ito", now).amount
    p.disaster_store.close()
    household = household_of(person)
    path = f"/d/{world.disaster_id}/m/{TANABE}/h/{quote(household, safe='')}"
    today = dt.date.today().isoformat()
    payment = {"procedure": "LIVELIHOOD_RECOVERY_SUPPORT", "amount": "1,000,000", "paid_on": today}

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with client() as s:
            await sign_in(s, server, "onagawa.abe")
            token = await page_token(s, server)
            async with s.post(f"{server}{path}/payments", data={FIELD: token, **payment, "reference": "X-1"},
                              allow_redirects=False) as r:
                seen["other"] = r.status
        async with client() as s:
            await sign_in(s, server, "tanabe.sato")
            token = await page_token(s, server)
            async with s.post(f"{server}{path}/payments", data={**payment, "reference": "X-2"},
                              allow_redirects=False) as r:
                seen["no token"] = r.status
            async with s.post(f"{server}{path}/payments", data={FIELD: token, **payment, "reference": "T-1"}) as r:
                seen["paid"] = (r.status, await r.text())
            async with s.post(f"{server}{path}/payments", data={FIELD: token, **payment, "amount": str(granted),
                                                                "reference": "T-2"}) as r:
                seen["above"] = (r.status, await r.text())
            async with s.post(f"{server}{path}/payments", data={FIELD: token, **payment, "amount": "-1",
                                                                "reference": "T-3"}) as r:
                seen["negative"] = (r.status, await r.text())
            async with s.get(f"{server}{path}/extract.pdf") as r:
                seen["pdf"] = await r.read()
        return seen

    seen = asyncio.run(scenario())
    assert seen["other"] == 404 and seen["no token"] == 403
    status, page = seen["paid"]
    assert status == 200 and 'id="saved"' in page
    assert f'id="support-applied-LIVELIHOOD_RECOVERY_SUPPORT">{granted:,}円' in page
    assert 'id="support-paid-LIVELIHOOD_RECOVERY_SUPPORT">1,000,000円' in page
    assert f'id="support-outstanding-LIVELIHOOD_RECOVERY_SUPPORT">{granted - 1_000_000:,}円' in page
    assert "T-1" in page and "tanabe.sato" in page
    assert seen["above"][0] == 400 and "above what is granted" in seen["above"][1]
    assert seen["negative"][0] == 400 and "amount: must be more than 0 yen" in seen["negative"][1]
    printed = subprocess.run(["pdftotext", "-layout", "-", "-"], input=seen["pdf"], check=True,
                             capture_output=True).stdout.decode()
    assert "被災者生活再建支援金" in printed and f"{granted:,}円" in printed and "T-1" in printed
    p = reader(world)
    [line] = p.support_payments.household(world.disaster_id, TANABE, household).procedures
    p.disaster_store.close()
    assert [x.reference for x in line.payments] == ["T-1"]  # the refused ones wrote nothing
    assert any(e.get("requested") == f"household {household!r}" for e in audit(world, "staff.refused", "onagawa.abe"))
    [paid] = audit(world, "staff.support.pay", "tanabe.sato")
    assert paid["household_number"] == household and paid["amount"] == 1_000_000
