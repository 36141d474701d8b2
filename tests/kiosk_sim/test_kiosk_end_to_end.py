"""The kiosk against the real certificate worker through the embedded cluster.

A small municipality is loaded and materialised into private topics and a private snapshot store;
its residents get virtual cards from a private test PKI; the worker runs in a thread on private topics.
Kiosk and worker share a clock set to a weekday morning in Japan, so the service hours hold whenever
the test runs; the PKI is created on that clock too.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domain.disasters import declaration
from domain.japan_time import JST
from infra.cluster_control import ClusterHandle
from infra.pcscd import PcscDaemon
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskTerminal, KioskTopics, OutcomeStatus
from kiosk_sim.load import LoadGenerator, make_terminals
from kiosk_sim.population import VirtualCardIssuer, VirtualResident, profiles_from_backup
from kiosk_sim.transport import InProcessTransport, PcscTransport
from kiosk_sim.vpcd import VPCD_PORT, VpcdCardServer
from schemas.registry import FileSchemaRegistry
from streams.adapter import publish
from streams.certificate_worker import CertificateWorker, WorkerOptions, WorkerTopics
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.kiosk_sim.conftest import VPCD_READER
from tests.platforms import make_platform

pytestmark = pytest.mark.integration

CODE = "302040"
# A Friday morning: inside the service hours, outside the year-end break.
MORNING = dt.datetime(2026, 11, 20, 10, 0, tzinfo=JST)


class MorningClock:
    """A clock that starts at MORNING and runs at real speed (kiosk and worker share it)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> dt.datetime:
        now = MORNING.astimezone(dt.UTC) + dt.timedelta(seconds=time.monotonic() - self._t0)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class Centre:
    bootstrap: str
    topics: KioskTopics
    residents: list[VirtualResident]
    worker: CertificateWorker
    clock: MorningClock
    platform: Platform  # its disaster store publishes to the worker's disaster-events topic through the relay


@pytest.fixture(scope="module")
def centre(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("kiosk-e2e")
    platform = make_platform(root, cluster)
    settings = platform.settings
    reference = load_reference_data()
    registry = platform.registry

    def private(prefix: str, partitions: int = 3) -> str:
        name = f"kiosk-e2e.{prefix}.{root.name}"
        cluster.create_topic(name, partitions, 3)
        return name

    diffs, residents_topic, dlq = private("diffs"), private("residents"), private("dlq", 1)
    simulator = RegisterSimulator(reference, CODE, population=120, seed=11, start=MORNING - dt.timedelta(days=5),
                                  font_path=settings.mincho_font)
    publish(simulator.full_load(), cluster.bootstrap_servers, registry, platform.register_signer, topic=diffs)
    store = platform.snapshot_store
    platform.materialiser(group_id=f"e2e-mat-{root.name}",
                          topic_names=MaterialiserTopics(diffs=diffs, residents=residents_topic, dlq=dlq)
                          ).run(until_caught_up=True, idle_seconds=0.5)

    clock = MorningClock()
    platform.pki.initialise(clock())
    issuer = VirtualCardIssuer(platform.pki, platform.key_pool(4))
    residents = issuer.population(profiles_from_backup(store, CODE, settings.audit_file), clock())

    topics = KioskTopics(requests=private("requests"), responses=private("responses"))
    worker_topics = WorkerTopics(requests=topics.requests, responses=topics.responses, issued=private("issued"),
                                 residents=residents_topic, revocations=private("revocations"),
                                 disasters=private("disasters", 1), dlq=dlq)
    worker = platform.certificate_worker(topic_names=worker_topics, group_id=f"e2e-worker-{root.name}",
                                         options=WorkerOptions(render_processes=0), clock=clock)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    assert ready.wait(60), "the certificate worker did not get ready"
    platform.disaster_store.topic = worker_topics.disasters
    yield Centre(cluster.bootstrap_servers, topics, residents, worker, clock, platform)
    platform.disaster_store.close()
    stop.set()
    thread.join(30)


@pytest.fixture
def connection(centre: Centre) -> Iterator[KioskConnection]:
    with KioskConnection(centre.bootstrap, FileSchemaRegistry(), topics=centre.topics, response_timeout=30) as conn:
        yield conn


def kiosk(centre: Centre, connection: KioskConnection) -> Kiosk:
    return Kiosk(KioskTerminal("familymart-302040-00007", "familymart", "WEST", CODE), connection,
                 clock=centre.clock)


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_a_resident_record_copy_is_issued_and_printed(centre: Centre, connection: KioskConnection,
                                                       tmp_path: Path) -> None:
    resident = centre.residents[0]
    choice = CertificateChoice(CODE, "RESIDENT_RECORD", household_scope="WHOLE_HOUSEHOLD",
                               include_head_and_relationship=True)
    with InProcessTransport(resident.card) as transport:
        outcome = kiosk(centre, connection).issue(transport, resident.pin, choice, print_to=tmp_path / "copy.pdf")
    assert outcome.status is OutcomeStatus.ISSUED, (outcome.reason_code, outcome.message)
    assert outcome.fee_yen == 200 and len(outcome.certificate_ids) == 1 and outcome.pages >= 1
    printed = tmp_path / "copy.pdf"
    assert printed.read_bytes().startswith(b"%PDF-")
    text = pdf_text(printed)
    assert "住民票" in text and "世帯全員" in text
    assert "証明する" in text


def test_refusals_are_shown_and_not_printed(centre: Centre, connection: KioskConnection, tmp_path: Path) -> None:
    resident = centre.residents[1]
    with InProcessTransport(resident.card) as transport:
        outcome = kiosk(centre, connection).issue(transport, resident.pin, CertificateChoice(CODE, "FAMILY_REGISTER"),
                                                  print_to=tmp_path / "never.pdf")
    assert outcome.status is OutcomeStatus.REFUSED and outcome.reason_code == "NOT_AVAILABLE_VIA_BCL"
    assert outcome.message and outcome.fee_yen == 0
    assert not (tmp_path / "never.pdf").exists()
    # Asking another municipality than the resident's own: the card is valid, the resident is not theirs.
    with InProcessTransport(resident.card) as transport:
        elsewhere = kiosk(centre, connection).issue(transport, resident.pin,
                                                    CertificateChoice("302015", "RESIDENT_RECORD"))
    assert elsewhere.status is OutcomeStatus.REFUSED and elsewhere.reason_code == "OTHER_MUNICIPALITY"
    assert elsewhere.message and elsewhere.fee_yen == 0


def test_the_card_through_pcsc(centre: Centre, connection: KioskConnection, pcsc_daemon: PcscDaemon,
                               tmp_path: Path) -> None:
    resident = centre.residents[2]
    server = VpcdCardServer(resident.card, port=VPCD_PORT)
    thread = server.start()
    try:
        with PcscTransport.open(VPCD_READER, timeout=10) as transport:
            outcome = kiosk(centre, connection).issue(transport, resident.pin,
                                                      CertificateChoice(CODE, "RESIDENT_RECORD"),
                                                      print_to=tmp_path / "self.pdf")
    finally:
        server.close()
        thread.join(5)
    assert outcome.status is OutcomeStatus.ISSUED, (outcome.reason_code, outcome.message)
    assert "住民票" in pdf_text(tmp_path / "self.pdf")


def test_a_disaster_damage_certificate_through_pcsc(centre: Centre, connection: KioskConnection,
                                                    pcsc_daemon: PcscDaemon, tmp_path: Path) -> None:
    """罹災証明書 with the card in a PC/SC reader: refused before the disaster is declared, issued once it is
    (the ledger built from the backup) and the household's dwelling is surveyed, with the level printed."""
    resident = centre.residents[4]
    choice = CertificateChoice(CODE, "DISASTER_DAMAGE")

    def issue(name: str) -> Any:
        server = VpcdCardServer(resident.card, port=VPCD_PORT)
        thread = server.start()
        try:
            with PcscTransport.open(VPCD_READER, timeout=10) as transport:
                return kiosk(centre, connection).issue(transport, resident.pin, choice, print_to=tmp_path / name)
        finally:
            server.close()
            thread.join(5)

    before = issue("before.pdf")
    assert before.status is OutcomeStatus.REFUSED and before.reason_code == "DISASTER_NOT_DECLARED"
    now = centre.clock()
    platform = centre.platform
    disaster, _ = platform.disaster_ledger.declare(declaration(
        name="令和8年田辺豪雨", kind="flood", municipality_codes=[CODE], occurred_at=now - dt.timedelta(days=1),
        now=now), now)
    platform.disaster_relay().publish_pending()
    index = centre.worker.disaster_facts
    deadline = time.monotonic() + 20
    while not index.declared_disasters(CODE):
        assert time.monotonic() < deadline, "the worker did not see the declared disaster"
        time.sleep(0.05)
    [row] = [r for r in platform.disaster_ledger.residents(disaster.disaster_id, CODE)
             if r["resident_code"] == resident.profile.resident_code]
    platform.damage_assessment.survey(disaster.disaster_id, row["dwelling_id"], surveyor="調査員", surveyed_on=None,
                                      now=now, level="DAIKIBO_HANKAI", flood_depth="ABOVE_FLOOR")
    outcome = issue("damage.pdf")
    assert outcome.status is OutcomeStatus.ISSUED, (outcome.reason_code, outcome.message)
    assert outcome.fee_yen == 10
    text = pdf_text(tmp_path / "damage.pdf").replace(" ", "").replace("\u3000", "")
    assert "罹災証明書" in text
    assert "大規模半壊" in text and "床上浸水" in text and "令和8年田辺豪雨（洪水・浸水）" in text


def test_a_short_load_is_answered_in_full(centre: Centre, connection: KioskConnection) -> None:
    import random

    generator = LoadGenerator(connection, centre.residents[3:], make_terminals(8, [CODE], ["302015"], random.Random(2)),
                              seed=3, wrong_pin_share=0.0, clock=centre.clock)
    report = generator.run(8.0, 3.0)
    assert report.arrivals > 0 and not report.failures
    statuses = report.by_status()
    assert statuses["NO_RESPONSE"] == 0 and statuses["ISSUED"] > 0
    assert len(report.answered) == report.arrivals
    assert all(s.outcome.reason_code != "BAD_SIGNATURE" for s in report.sessions)
