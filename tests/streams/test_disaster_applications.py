"""Online applications end to end against real parts: virtual My Number cards from the platform's test PKI in the
vpcd reader of the real pcscd, the installed `bcl` in subprocesses (`disaster apply` signs through PC/SC like the
kiosk), the disaster store on disk, the embedded cluster (the relay publishes DisasterApplication events), and a
real SMTP server (aiosmtpd, infra.mail_capture) that the mailer sends to. The ledger rows are written into the
ledger's own tables (as tests.ledger_dwellings_factory does) with the cards' certificate serials."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from certgen.user_certificates import CertificateKind
from domain.application_token import draft_text, read_signed
from domain.disaster_applications import ApplicationRefusedError
from domain.disasters import declaration
from infra import topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS
from infra.mail_capture import MailCapture
from infra.pcscd import PcscDaemon
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.vpcd import VPCD_PORT, VpcdCardServer
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.disaster_ledger import put_dwellings, put_residents
from streams.application_intake import new_draft
from streams.platform import Platform
from tests.kiosk_sim.conftest import pcsc_daemon  # noqa: F401  (the session's pcscd with the vpcd driver)
from tests.ledger_dwellings_factory import ledger_row
from tests.platforms import make_platform
from tests.topic_reader import read_topic
from tests.web_fixtures import headless_chromium, served

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"
SERDE = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_APPLICATIONS])
ONAGAWA = "045811"
PIN = "1234"
STAFF = f"disaster-{ONAGAWA}@staff.bcl.example"


@dataclass
class Card:
    serial: str
    card: JpkiCard
    certificate_der: bytes


@dataclass
class World:
    data_dir: Path
    platform: Platform
    disaster_id: str
    env: dict[str, str]
    capture: MailCapture
    resident: Card  # in the ledger, dwelling D1 in the disaster area
    stranger: Card  # a valid card of nobody in the ledger


def _card(platform: Platform, serial: str, now: dt.datetime) -> Card:
    issued = platform.pki.issue_card(serial, CertificateKind.CARD, now)
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    return Card(serial, JpkiCard(auth=CardKey(issued.key, der), auth_pin=PIN), der)


def _ledger_resident(platform: Platform, disaster_id: str, resident_code: str, serial: str, dwelling: str) -> None:
    con = platform.disaster_store.connection
    with platform.disaster_store.transaction():
        if con.execute("SELECT 1 FROM ledger_dwellings WHERE disaster_id=? AND dwelling_id=?",
                       (disaster_id, dwelling)).fetchone() is None:
            put_dwellings(con, [(disaster_id, dwelling, ONAGAWA, f"住所 {dwelling}", 38.445, 141.445)])
        put_residents(con, [ledger_row(
            disaster_id, ONAGAWA, resident_code, dwelling, family_name="女川", given_name="花子",
            family_name_kana="オナガワ", given_name_kana="ハナコ", birth_date="1980-04-01", sex="FEMALE",
            individual_number="123456789018", jpki_serials=serial, household_head_name="女川 花子")])


@pytest.fixture
def world(cluster: ClusterHandle, tmp_path: Path) -> Iterator[World]:
    data_dir = tmp_path / "var"
    capture = MailCapture(tmp_path / "mail").start()
    platform = make_platform(data_dir, cluster, smtp_port=capture.port)
    now = dt.datetime.now(dt.UTC)
    platform.pki.initialise(now)
    disaster = platform.disaster_store.declare(declaration(
        name="令和8年宮城県沖地震", kind="tsunami", municipality_codes=[ONAGAWA],
        occurred_at=now - dt.timedelta(days=1), now=now), now)
    resident, stranger = _card(platform, "00000000000a0001", now), _card(platform, "00000000000a0002", now)
    platform.disaster_applications  # noqa: B018 - the ledger's and the applications' tables
    _ledger_resident(platform, disaster.disaster_id, "R0001", resident.serial, "D1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning", "BCL_SMTP_PORT": str(capture.port),
            "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}
    made = World(data_dir, platform, disaster.disaster_id, env, capture, resident, stranger)
    yield made
    made.capture.stop()


@contextmanager
def inserted(card: Card) -> Iterator[None]:
    """The card in the first vpcd reader for the block (pcscd sees it inserted, then removed)."""
    server = VpcdCardServer(card.card, port=VPCD_PORT)
    thread = server.start()
    try:
        yield
    finally:
        server.close()
        thread.join(timeout=5)


def bcl(world: World, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "disaster", *args], capture_output=True, text=True,
                          env=world.env | extra_env, timeout=120)


def apply(world: World, card: Card, procedure: str = "RISAI_CERTIFICATE",
          mail: str = "hanako@example.jp") -> dict[str, Any]:
    with inserted(card):
        done = bcl(world, "apply", world.disaster_id, "--procedure", procedure, "--mail", mail, "--pin", PIN,
                   "--json")
    assert done.returncode == 0, done
    return json.loads(done.stdout)


def mails(world: World) -> list[EmailMessage]:
    return [message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted(world.capture.handler.folder.glob("*.eml"))]


def send_mails(world: World) -> int:
    return world.platform.disaster_mailer().run_once()


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_apply_is_matched_published_and_mails_the_staff(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    applied = apply(world, world.resident)
    assert applied["matched"] is True and applied["status"] == "OPEN"
    assert (applied["municipality_code"], applied["resident_code"], applied["dwelling_id"]) == (ONAGAWA, "R0001", "D1")

    assert send_mails(world) == 1
    [staff] = mails(world)
    assert staff["To"] == STAFF and "罹災証明書" in staff["Subject"]
    assert applied["application_id"] in body(staff) and "一致" in body(staff)
    assert staff["Message-ID"] == world.platform.mail_outbox.mails(applied["application_id"])[0].message_id

    relayed = bcl(world, "relay", "--until-published")
    assert relayed.returncode == 0, relayed
    events = [SERDE.decode(m.value()) for m in read_topic(world.env["BCL_BOOTSTRAP_SERVERS"],
                                                         topics.DISASTER_APPLICATIONS)]
    [event] = [e for e in events if e["application_id"] == applied["application_id"]]
    assert (event["event_type"], event["matched"], event["status"]) == ("SUBMITTED", True, "OPEN")
    assert "hanako" not in json.dumps(event, default=str)  # no mail address on the topic


def test_rejection_mails_the_applicant_the_reason(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    applied = apply(world, world.resident, "HISAI_CERTIFICATE")
    done = bcl(world, "reject", applied["application_id"], "--staff", "佐藤", "--reason", "申請内容に不備があります",
               "--json")
    assert done.returncode == 0, done
    rejected = json.loads(done.stdout)
    assert (rejected["status"], rejected["decided_by"], rejected["decision_reason"]) == \
        ("REJECTED", "佐藤", "申請内容に不備があります")
    assert rejected["decided_at"] is not None
    assert send_mails(world) == 2  # the staff's, the applicant's
    [applicant] = [m for m in mails(world) if m["To"] == "hanako@example.jp"]
    assert "申請内容に不備があります" in body(applicant)

    # The decision is announced in the transaction that made it, after the submission, with who and why.
    events = [SERDE.decode(e.value) for e in world.platform.disaster_store.unpublished(1000)
              if e.topic == topics.DISASTER_APPLICATIONS]
    assert [(e["event_type"], e["status"], e["decided_by"], e["reason"]) for e in events] == [
        ("SUBMITTED", "OPEN", None, None), ("REJECTED", "REJECTED", "佐藤", "申請内容に不備があります")]

    again = bcl(world, "reject", applied["application_id"], "--staff", "佐藤", "--reason", "x")
    assert again.returncode != 0 and again.stderr.startswith("error: ") and "already rejected" in again.stderr


def test_ready_to_issue_once_accepted_and_surveyed(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    applied = apply(world, world.resident)
    done = bcl(world, "accept", applied["application_id"], "--staff", "佐藤", "--json")
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["ready_told_at"] is None  # the dwelling is not surveyed yet
    assert send_mails(world) == 1  # only the staff's
    world.platform.damage_assessment.survey(world.disaster_id, "D1", surveyor="調査員A", surveyed_on=None,
                                            now=dt.datetime.now(dt.UTC), level="ZENKAI")
    assert send_mails(world) == 1
    ready = [m for m in mails(world) if m["To"] == "hanako@example.jp"]
    assert len(ready) == 1 and "交付準備ができました" in ready[0]["Subject"]
    assert send_mails(world) == 0  # told once
    assert world.platform.disaster_applications.application(applied["application_id"]).ready_told_at is not None


def test_a_duplicate_is_refused_with_the_reason(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    first = apply(world, world.resident)
    with inserted(world.resident):
        done = bcl(world, "apply", world.disaster_id, "--procedure", "RISAI_CERTIFICATE", "--mail", "h@example.jp",
                   "--pin", PIN)
    assert done.returncode != 0, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and "duplicate" in line and first["application_id"] in line
    assert len(world.platform.disaster_applications.applications(world.disaster_id)) == 1
    apply(world, world.resident, "LIVELIHOOD_RECOVERY_SUPPORT")  # another procedure is no duplicate


def test_outside_the_disaster_area_fails_the_match_and_staff_see_why(world: World,
                                                                     pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    applied = apply(world, world.stranger, mail="someone@example.jp")
    assert applied["matched"] is False and applied["municipality_code"] is None
    assert "outside the disaster area" in applied["match_reason"]
    listed = bcl(world, "applications", world.disaster_id, "--municipality", ONAGAWA, "--json")
    assert listed.returncode == 0, listed
    [shown] = json.loads(listed.stdout)["applications"]
    assert shown["matched"] is False and "outside the disaster area" in shown["match_reason"]
    assert send_mails(world) == 1
    [staff] = mails(world)
    assert staff["To"] == STAFF and "不一致" in body(staff) and "outside the disaster area" in body(staff)


def _signed_by_card(world: World, card: Card, draft_line: str) -> str:
    with inserted(card):
        done = bcl(world, "sign", draft_line, "--pin", PIN)
    assert done.returncode == 0, done
    return done.stdout.strip()


def test_a_bad_signature_or_certificate_is_refused_and_nothing_stored(world: World,
                                                                      pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    intake = world.platform.application_intake()
    draft = new_draft(world.disaster_id, "RISAI_CERTIFICATE", "hanako@example.jp", dt.datetime.now(dt.UTC))
    signed_draft, certificate, signature = read_signed(_signed_by_card(world, world.resident, draft_text(draft)))
    assert signed_draft == draft
    # The mails redirected after signing: the signature no longer covers the application.
    redirected = type(draft)(draft.application_id, draft.disaster_id, draft.procedure, "thief@example.jp",
                             draft.applied_at)
    with pytest.raises(ApplicationRefusedError, match="BAD_SIGNATURE"):
        intake.submit(redirected, certificate, signature)
    # Another card's certificate with this card's signature.
    with pytest.raises(ApplicationRefusedError, match="BAD_SIGNATURE"):
        intake.submit(draft, world.stranger.certificate_der, signature)
    # A certificate the PKI did not issue.
    from tests.kiosk_sim.conftest import self_signed_card_key

    with pytest.raises(ApplicationRefusedError, match="CERTIFICATE_UNTRUSTED"):
        intake.submit(draft, self_signed_card_key("FORGED").certificate_der, signature)
    assert world.platform.disaster_applications.applications(world.disaster_id) == []
    assert world.platform.mail_outbox.unsent() == []
    stored = intake.submit(draft, certificate, signature)  # the genuine one is taken
    assert stored.matched and stored.application_id == draft.application_id


def test_a_revoked_card_is_refused(world: World, pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    from certgen.revocation import Revocation
    from domain.card_lifecycle import RevocationReason

    now = dt.datetime.now(dt.UTC)
    world.platform.pki.revoke(Revocation(world.resident.serial, RevocationReason.LOST_CARD,
                                         now - dt.timedelta(minutes=1), ONAGAWA))
    with inserted(world.resident):
        done = bcl(world, "apply", world.disaster_id, "--procedure", "HISAI_CERTIFICATE", "--mail", "h@example.jp",
                   "--pin", PIN)
    assert done.returncode != 0 and "CARD_REVOKED" in done.stderr, done
    assert world.platform.disaster_applications.applications(world.disaster_id) == []


def test_mails_survive_a_mailer_killed_after_the_server_accepted(world: World,
                                                                 pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    applied = apply(world, world.resident)
    [queued] = world.platform.mail_outbox.unsent()
    killed = bcl(world, "mailer", "--once", BCL_CRASH_POINT="mailer.after_accept")
    assert killed.returncode == CRASH_EXIT_STATUS, killed
    assert world.capture.handler.received == [queued.message_id]  # the server has it; the mark was not written
    assert [m.mail_id for m in world.platform.mail_outbox.unsent()] == [queued.mail_id]

    restarted = bcl(world, "mailer", "--once")
    assert restarted.returncode == 0 and restarted.stdout.strip() == "1 mail(s) sent", restarted
    # At least once: the one mail in flight went again, with the same Message-ID, so the server keeps it once.
    assert world.capture.handler.received == [queued.message_id, queued.message_id]
    [kept] = mails(world)
    assert kept["Message-ID"] == queued.message_id and applied["application_id"] in body(kept)
    assert world.platform.mail_outbox.unsent() == []
    assert bcl(world, "mailer", "--once").stdout.strip() == "0 mail(s) sent"
    assert len(world.capture.handler.received) == 2


def test_the_mailer_keeps_a_mail_the_server_cannot_take(world: World, tmp_path: Path,
                                                        pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    apply(world, world.resident)
    world.capture.stop()
    assert bcl(world, "mailer", "--once").stdout.strip() == "0 mail(s) sent"
    [kept] = world.platform.mail_outbox.unsent()
    assert kept.attempts == 1
    world.capture = MailCapture(tmp_path / "mail2", port=world.capture.port).start()
    assert send_mails(world) == 1 and len(mails(world)) == 1



# -- the resident's page, in headless Chromium --------------------------------------------------------------------


@pytest.fixture
def page_url(world: World) -> Iterator[str]:
    """The application page served by aiohttp on 127.0.0.1 from a thread with its own event loop."""
    from streams.application_web import make_app

    store = world.platform.disaster_store
    app = make_app(world.platform.application_intake(), lambda: [d for d in store.disasters() if d.closed_at is None])
    with served(app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def test_the_page_applies_with_the_card_signature(world: World, page_url: str, browser: Any,
                                                  pcsc_daemon: PcscDaemon) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def draft_page() -> str:
        browser.get(page_url + "/")
        Select(browser.find_element(By.ID, "disaster_id")).select_by_value(world.disaster_id)
        Select(browser.find_element(By.ID, "procedure")).select_by_value("RISAI_CERTIFICATE")
        browser.find_element(By.ID, "mail").send_keys("hanako@example.jp")
        browser.find_element(By.ID, "draft").click()
        return str(WebDriverWait(browser, 20).until(
            expected_conditions.presence_of_element_located((By.ID, "draft_line"))).text.strip())

    line = draft_page()
    assert "bcl disaster sign" in browser.find_element(By.ID, "command").text
    signed = _signed_by_card(world, world.resident, line)  # the card client, through pcscd
    browser.find_element(By.ID, "signed").send_keys(signed)
    browser.find_element(By.ID, "submit").click()
    shown = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.ID, "application_id"))).text
    assert "照合できました" in browser.find_element(By.ID, "match").text
    stored = world.platform.disaster_applications.application(shown)
    assert stored.matched and stored.mail_address == "hanako@example.jp"

    # The same signed line pasted again (a replay, or a second application of the same): refused, one sentence.
    draft_page()
    browser.find_element(By.ID, "signed").send_keys(signed)
    browser.find_element(By.ID, "submit").click()
    reason = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.ID, "reason"))).text
    assert "already submitted" in reason and shown in reason
    assert len(world.platform.disaster_applications.applications(world.disaster_id)) == 1


def test_the_page_refuses_posts_without_its_csrf_token_and_sets_the_headers(world: World, page_url: str) -> None:
    import asyncio

    import aiohttp

    from streams.application_web import SECURITY_HEADERS

    async def attempts() -> list[tuple[int, dict[str, str]]]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            out = []
            async with session.get(page_url + "/") as got:
                out.append((got.status, dict(got.headers)))
            for path in ("/draft", "/submit"):
                async with session.post(page_url + path, data={"disaster_id": world.disaster_id,
                                                               "procedure": "RISAI_CERTIFICATE",
                                                               "mail": "x@example.jp", "signed": "x"}) as posted:
                    out.append((posted.status, dict(posted.headers)))
            async with session.get(page_url + "/nowhere") as missing:
                out.append((missing.status, dict(missing.headers)))
            return out

    answers = asyncio.run(attempts())
    assert [status for status, _ in answers] == [200, 403, 403, 404]
    for _status, headers in answers:
        assert all(headers.get(name) == value for name, value in SECURITY_HEADERS.items()), headers
    assert world.platform.disaster_applications.applications(world.disaster_id) == []
