"""Two issuing centres against real processes: a 4-broker embedded cluster (East brokers 1-2, West 3-4), one
certificate worker process per centre (each with its renderer process, its own ledger and archive), kiosks of an
East vendor and a West vendor under steady load through kiosk_sim's KioskConnection (failover included).

- East is lost whole (its worker's process group SIGKILLed, its brokers down): every request is answered once,
  East's kiosks are answered by West within the failover bound, nothing is issued or billed twice; East comes
  back and its kiosks are answered by it again.
- Both centres claim the same requests at once (what a link cut heals into: a kiosk that gave up on one centre
  while that centre was still working): one answer per request, one certificate.
- A kiosk that gives up withdraws its request on the claims log (kiosk_sim.withdrawal): if its withdrawal is the
  first claim, no worker answers or issues it; if a worker's claim is first, the kiosk prints that claim's answer.
- The link between the centres cut while both run (infra.centre_link: each centre's worker and kiosks are processes
  of their own that reach only their centre's brokers): each kiosk is answered by its own centre or gets the
  kiosk's no-answer; after the heal both are answered again, nothing answered or issued twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from domain.issuing_centres import CENTRE_HEADER, CentreAvailability
from domain.municipalities import municipality
from infra import topics
from infra.centre_link import CentreLink, broker_ports, centre_gid
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS, ENVIRONMENT_VARIABLE
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.kiosk import (
    CertificateChoice,
    Kiosk,
    KioskConnection,
    KioskOutcome,
    KioskTerminal,
    KioskTopics,
    OutcomeStatus,
)
from kiosk_sim.transport import InProcessTransport
from kiosk_sim.undecided_requests import UndecidedRequests
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.centre_claims import centre_group_id
from streams.certificate_worker import CERTIFICATE_HEADER, WorkerTopics, certificate_id
from tests.streams.kiosk_load import Load
from tests.streams.kiosk_world import (
    ANCHOR,
    CHIYODA,
    PIN,
    TANABE,
    Holder,
    KioskWorld,
    ShiftableClock,
    load_residents,
    make_request,
    make_world,
    resident_with_card,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
FAIL_AFTER = 3.0  # the kiosks' failover bound (seconds without an answer)
PROBE_AFTER = 3.0


@pytest.fixture(scope="module")
def centres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = ClusterHandle.start(brokers=4, data_dir=Path(tmp_path_factory.mktemp("two-centres")), centres=True,
                                 centre_groups={centre_group_id(c): c for c in ("EAST", "WEST")})
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KioskWorld, list[Holder]]]:
    w = make_world(tmp_path_factory.mktemp("centres-world"))
    holders = [w.card(i) for i in range(8)]
    load_residents(w.store, [resident_with_card(w, h, TANABE, 300 + i) for i, h in enumerate(holders)])
    # The seal keys are in each centre before it serves: two workers sharing one PKI directory must not both make
    # the municipality's first seal.
    w.pki.ensure_seal_certificate(TANABE, municipality(TANABE).name, ANCHOR)
    yield w, holders
    w.server.shutdown()


def centre_topics(cluster: ClusterHandle) -> WorkerTopics:
    def make(partitions: int) -> str:
        name = f"test.centres.{uuid.uuid4().hex[:12]}"
        cluster.create_topic(name, partitions, 3)
        return name
    return WorkerTopics(requests=make(4), responses=make(4), issued=make(3), residents=make(1),
                        revocations=make(1), disasters=make(1), dlq=make(1), claims=make(topics.BULK_PARTITIONS))


class CentreWorker:
    """A centre's certificate worker: its own process group (the worker and its renderer), its own data dir."""

    def __init__(self, centre: str, cluster: ClusterHandle, names: WorkerTopics, w: KioskWorld, root: Path) -> None:
        self.centre = centre
        self.config = {"bootstrap": cluster.bootstrap_servers, "topics": dataclasses.asdict(names),
                       "group_id": centre_group_id(centre), "root": str(root),
                       "snapshots": str(w.store.root), "pki": str(w.pki.path),
                       "repository_url": w.pki.endpoints.base_url, "centre": centre, "render_processes": 1}
        self.proc: subprocess.Popen[str] | None = None
        self.counters: dict[str, Any] = {}

    def start(self, gid: int | None = None) -> None:
        """Start the worker; under `gid` (its centre's, infra.centre_link) for a test that cuts the link."""
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.streams.certificate_worker_process",
                                      json.dumps(self.config)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                                     group=gid, extra_groups=None if gid is None else [])

    def wait_ready(self, timeout: float = 90) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "READY":
                return
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"{self.centre} worker exited with {self.proc.returncode} before it was ready")
        raise AssertionError(f"{self.centre} worker not ready in time")

    def kill_centre(self) -> None:
        """SIGKILL the worker and its renderer processes (the whole process group)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=60)
            for line in out.splitlines():
                if line.startswith("COUNTERS "):
                    self.counters = json.loads(line.removeprefix("COUNTERS "))
        return self.counters


class Recorder:
    """Every response and CertificateIssued event, read as they come (the embedded cluster trims a partition beyond
    5 MiB: the PDFs of a whole test do not stay on the topic to be read at the end)."""

    def __init__(self, servers: str, names: WorkerTopics) -> None:
        self.answers: dict[str, set[bytes]] = defaultdict(set)  # request id → the answers' hashes
        self.copies: Counter[str] = Counter()
        self.events: dict[str, set[bytes]] = defaultdict(set)  # certificate id → its events
        self._names = names
        self._consumer = Consumer({"bootstrap.servers": servers, "group.id": f"recorder-{uuid.uuid4().hex}",
                                   "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024,
                                   "max.partition.fetch.bytes": 16 * 1024 * 1024})
        self._consumer.assign([TopicPartition(t, p, 0) for t, n in ((names.responses, 4), (names.issued, 3))
                               for p in range(n)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(200, 0.2):
                if msg.error():
                    continue
                if msg.topic() == self._names.responses:
                    request_id = msg.key().decode()
                    self.answers[request_id].add(hashlib.sha256(msg.value()).digest())
                    self.copies[request_id] += 1
                else:
                    self.events[dict(msg.headers())[CERTIFICATE_HEADER].decode()].add(msg.value())

    def stop(self) -> None:
        time.sleep(2)  # what is already produced
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def one_answer_each(self) -> set[str]:
        """The request ids answered; each with one answer (its copies, if any, byte-identical)."""
        twice = {r: len(v) for r, v in self.answers.items() if len(v) > 1}
        assert not twice, f"requests answered with two different answers: {twice}"
        return set(self.answers)

    def certificates(self) -> set[str]:
        different = [c for c, v in self.events.items() if len(v) > 1]
        assert not different, f"certificates issued twice with different events: {different}"
        return set(self.events)


def test_losing_east_whole_under_load_west_answers_everything_once_and_east_returns(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path) -> None:
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    east = CentreWorker("EAST", centres_cluster, names, w, tmp_path / "east")
    west = CentreWorker("WEST", centres_cluster, names, w, tmp_path / "west")
    east.start()
    west.start()
    east.wait_ready()
    west.wait_ready()
    recorder = Recorder(servers, names)
    connection = KioskConnection(servers, FileSchemaRegistry(),
                                 topics=KioskTopics(names.requests, names.responses, names.claims), response_timeout=30,
                                 centres=CentreAvailability(FAIL_AFTER, PROBE_AFTER),
                                 vendor_centres={"seven-eleven": "EAST", "lawson": "WEST"}).start()
    load = Load(connection, holders, {"seven-eleven": "EAST", "lawson": "WEST"}).start()
    try:
        time.sleep(4)  # the first renders of each worker are slow (fonts, seals): steady from here
        steady_at = time.monotonic()
        time.sleep(4)
        lost_at = time.monotonic()
        east.kill_centre()  # every process of East's worker, SIGKILL, mid-traffic
        centres_cluster.fail_centre("EAST")  # and every broker of East
        time.sleep(10)
        restoring_at = time.monotonic()
        centres_cluster.restore_centre("EAST")
        east.start()
        east.wait_ready()
        restored_at = time.monotonic()
        time.sleep(8)
    finally:
        load.stop()
        connection.close()
        west_counters = west.stop()
        east.stop()
        recorder.stop()

    sessions = load.sessions
    outcomes = Counter(s.outcome.status.value for s in sessions)
    assert outcomes == {"ISSUED": len(sessions)}, outcomes  # every request answered, and issued
    east_vendor = [s for s in sessions if s.vendor == "seven-eleven"]
    for s in sorted(sessions, key=lambda s: s.sent):
        print(f"session {s.vendor} sent={s.sent - lost_at:+.2f} took={s.outcome.session_seconds:.2f} "
              f"centre={s.outcome.centre}")
    before = [s for s in east_vendor if s.sent >= steady_at and s.sent + s.outcome.session_seconds < lost_at]
    during = [s for s in east_vendor if lost_at <= s.sent < restoring_at]
    after = [s for s in east_vendor if s.sent >= restored_at + PROBE_AFTER + FAIL_AFTER]
    assert before and during and after
    assert {s.outcome.centre for s in before} == {"EAST"}
    assert {s.outcome.centre for s in during} == {"WEST"}
    assert {s.outcome.centre for s in after} == {"EAST"}, "East's kiosks did not come back to East"
    assert {s.outcome.centre for s in sessions if s.vendor == "lawson"} == {"WEST"}
    first_from_west = min(s.sent + s.outcome.session_seconds for s in during)
    assert first_from_west - lost_at <= FAIL_AFTER + 7, "failover took longer than the bound"

    ids = {s.outcome.request_id for s in sessions}
    assert ids <= recorder.one_answer_each()
    certificates = recorder.certificates()
    issued_ids = [c for s in sessions for c in s.outcome.certificate_ids]
    assert len(issued_ids) == len(set(issued_ids)) == len(sessions)  # one certificate per request
    assert set(issued_ids) <= set(certificates)
    assert set(issued_ids) == {certificate_id(s.outcome.request_id, 1) for s in sessions}  # type: ignore[arg-type]
    # Billing counts a certificate id once: an identical copy of an event (a claim completed from both centres)
    # is not a second certificate. Report how many there were.
    print(f"sessions={len(sessions)} during={len(during)} failover_s={first_from_west - lost_at:.1f} "
          f"duplicate_response_copies={sum(n - 1 for n in recorder.copies.values())} west={west_counters}")


def test_both_centres_claiming_the_same_requests_answer_each_once(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path) -> None:
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    workers = [CentreWorker(c, centres_cluster, names, w, tmp_path / c.lower()) for c in ("EAST", "WEST")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.KIOSK_REQUESTS])
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 0})
    clock = ShiftableClock()
    requests = [make_request(holders[i % len(holders)], clock) for i in range(8)]
    recorder = Recorder(servers, names)
    try:
        for request in requests:  # the same signed bytes to both centres, at once
            value = serde.encode(request)
            for centre in ("EAST", "WEST"):
                producer.produce(names.requests, value, request["request_id"].encode(),
                                 headers=[(CENTRE_HEADER, centre.encode())])
        producer.flush(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(recorder.answers) < len(requests):
            time.sleep(1)
        time.sleep(3)  # let the losing side finish too
    finally:
        counters = [worker.stop() for worker in workers]
        recorder.stop()
    assert recorder.one_answer_each() == {r["request_id"] for r in requests}
    assert recorder.certificates() == {certificate_id(r["request_id"], 1) for r in requests}  # all issued, once
    decided_here = sum(c["issued"] for c in counters)
    lost = sum(c["superseded"] + c["took_over"] for c in counters)
    assert decided_here == len(requests) and lost == len(requests), counters  # each decided by one centre only


def one_session(connection: KioskConnection, holder: Holder, print_to: Path | None = None) -> KioskOutcome:
    """One session of a Seven-Eleven kiosk (East's vendor) with the holder's card."""
    kiosk = Kiosk(KioskTerminal("seven-eleven-0", "seven-eleven", "EAST", CHIYODA), connection,
                  clock=ShiftableClock())
    card = JpkiCard(auth=CardKey(holder.key, holder.certificate_der), auth_pin=PIN)
    return kiosk.issue(InProcessTransport(card), PIN, CertificateChoice(TANABE, "RESIDENT_RECORD"), print_to=print_to)


def test_a_kiosk_whose_withdrawal_is_the_first_claim_is_refunded_and_its_request_is_never_issued(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """East's worker decides the request and claims it in its own ledger, then dies before its claim reaches the
    claims log (crash point worker.after_claim); the kiosk gives up and withdraws. East, restarted, completes the
    claim from its ledger: the withdrawal is first, so it answers and issues nothing."""
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    east = CentreWorker("EAST", centres_cluster, names, w, tmp_path / "east")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "worker.after_claim")
    east.start()
    east.wait_ready()
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    recorder = Recorder(servers, names)
    connection = KioskConnection(servers, FileSchemaRegistry(),
                                 topics=KioskTopics(names.requests, names.responses, names.claims), response_timeout=10,
                                 centres=CentreAvailability(FAIL_AFTER, PROBE_AFTER),
                                 vendor_centres={"seven-eleven": "EAST"}).start()
    try:
        outcome = one_session(connection, holders[0])
        assert east.proc is not None and east.proc.wait(30) == CRASH_EXIT_STATUS  # decided, not in the claims log
        east.start()
        east.wait_ready()  # its ledger's claim is arbitrated before it serves
    finally:
        connection.close()
        counters = east.stop()
        recorder.stop()
    assert outcome.status is OutcomeStatus.WITHDRAWN and outcome.message.startswith("ただいま証明書を発行できません")
    assert outcome.fee_yen == 0 and not outcome.certificate_ids
    assert connection.counters.withdrawn == 1 and connection.counters.claimed_answers == 0
    assert outcome.request_id is not None and outcome.request_id not in recorder.answers  # no response
    assert certificate_id(outcome.request_id, 1) not in recorder.certificates()  # nothing issued, billed, counted
    assert counters["withdrawn"] >= 1 and counters["took_over"] == counters["superseded"] == 0, counters


def test_a_kiosk_that_gives_up_after_a_worker_claimed_prints_the_answer_of_the_claim(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path) -> None:
    """East answers, but the kiosk never reads East's response (it reads a responses topic nobody writes), gives up
    and withdraws: East's claim is first, so the kiosk prints the certificate that claim carries, once, billed once."""
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    unread = f"test.centres.{uuid.uuid4().hex[:12]}"
    centres_cluster.create_topic(unread, 4, 3)
    east = CentreWorker("EAST", centres_cluster, names, w, tmp_path / "east")
    east.start()
    east.wait_ready()
    recorder = Recorder(servers, names)
    connection = KioskConnection(servers, FileSchemaRegistry(),
                                 topics=KioskTopics(names.requests, unread, names.claims), response_timeout=10,
                                 centres=CentreAvailability(FAIL_AFTER, PROBE_AFTER),
                                 vendor_centres={"seven-eleven": "EAST"}).start()
    printed = tmp_path / "printed" / "certificate.pdf"
    try:
        outcome = one_session(connection, holders[1], printed)
    finally:
        connection.close()
        counters = east.stop()
        recorder.stop()
    assert outcome.status is OutcomeStatus.ISSUED, outcome
    assert outcome.request_id is not None and outcome.centre == "EAST"
    assert outcome.certificate_ids == (certificate_id(outcome.request_id, 1),)
    assert outcome.fee_yen > 0 and printed.read_bytes().startswith(b"%PDF") and printed.stat().st_size == \
        outcome.pdf_bytes
    assert connection.counters.claimed_answers == 1 and connection.counters.withdrawn == 0
    assert recorder.one_answer_each() == {outcome.request_id}  # East's one response, the bytes the kiosk took
    assert recorder.certificates() == set(outcome.certificate_ids)  # issued once
    assert counters["issued"] == 1 and counters["withdrawn"] == 0, counters


def test_a_kiosk_process_that_dies_mid_session_settles_its_requests_when_it_restarts(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path) -> None:
    """A kiosk process (its own, as a real terminal's) sends with no worker running and is SIGKILLed while its two
    terminals wait. Restarted on the same file of undecided requests, it withdraws both and learns that its
    withdrawals came first (the residents are owed their refunds); East's worker, started afterwards, issues neither."""
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    undecided = tmp_path / "kiosk" / "undecided.sqlite"
    key_of = {k.public_key().public_numbers(): i for i, k in enumerate(w.keys)}
    kiosks = CentreKiosks("EAST", {
        "bootstrap": servers, "requests": names.requests, "responses": names.responses, "claims": names.claims,
        "keys": str(w.root / "keys"), "key_count": len(w.keys), "vendors": {"seven-eleven": "EAST"},
        "vendor_centres": {"seven-eleven": "EAST"}, "fail_after": FAIL_AFTER, "probe_after": PROBE_AFTER,
        "response_timeout": 120.0, "undecided": str(undecided),
        "holders": [{"serial": h.serial, "key": key_of[h.key.public_key().public_numbers()],
                     "certificate": h.certificate_der.hex()} for h in holders[2:4]]})
    kiosks.start()
    store = UndecidedRequests(undecided)
    deadline = time.monotonic() + 30
    while len(store.all()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    marked = {r for r, *_ in store.all()}
    store.close()
    time.sleep(FAIL_AFTER + 1)  # both sent, and sent again to West
    assert kiosks.proc is not None
    os.killpg(kiosks.proc.pid, signal.SIGKILL)
    kiosks.stop()
    assert len(marked) == 2 and not kiosks.sessions, "the terminals did not wait on their requests"

    east = CentreWorker("EAST", centres_cluster, names, w, tmp_path / "east")
    recorder = Recorder(servers, names)
    connection = KioskConnection(servers, FileSchemaRegistry(),
                                 topics=KioskTopics(names.requests, names.responses, names.claims), response_timeout=30,
                                 centres=CentreAvailability(FAIL_AFTER, PROBE_AFTER),
                                 vendor_centres={"seven-eleven": "EAST"}, undecided=undecided).start()
    try:
        settled = connection.settle_undecided()
        east.start()
        east.wait_ready()
        after = one_session(connection, holders[4])  # answered: East is past the withdrawn requests' batch
        time.sleep(2)
    finally:
        connection.close()
        counters = east.stop()
        recorder.stop()
    assert {s.request_id for s in settled} == marked and all(s.withdrawn for s in settled), settled
    reopened = UndecidedRequests(undecided)
    assert reopened.all() == []  # settled: a further restart has nothing to withdraw
    reopened.close()
    assert after.status is OutcomeStatus.ISSUED, after
    assert not marked & set(recorder.answers)
    assert not {certificate_id(r, 1) for r in marked} & recorder.certificates()
    assert counters["withdrawn"] == len(marked) and counters["issued"] == 1, counters


class CentreKiosks:
    """One centre's kiosks in a process of their own (tests.streams.kiosk_load), under the centre's group id, so
    that a cut of the link (infra.centre_link) leaves them only their own centre's brokers."""

    def __init__(self, centre: str, config: dict[str, Any]) -> None:
        self.centre = centre
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.sessions: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.streams.kiosk_load", json.dumps(self.config)],
                                     cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)},
                                     group=centre_gid(self.centre), extra_groups=[])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self._ready.wait(60), f"{self.centre} kiosks not ready"

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "READY":
                self._ready.set()
            elif line.startswith("SESSION "):
                self.sessions.append(json.loads(line.removeprefix("SESSION ")))

    def stop(self) -> list[dict[str, Any]]:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(90)
            assert self._reader is not None
            self._reader.join(10)
        return self.sessions


CUT_SECONDS = 15.0  # shorter than the worker's 30 s wait for a delivery: a worker waits through it and goes on
SETTLE_SECONDS = 14.0  # after the heal: librdkafka's reconnect backoff (≤ 10 s) and a kiosk's failover back


def test_cutting_the_link_between_the_centres_each_side_answers_its_own_or_refuses_and_nothing_twice(
        centres_cluster: ClusterHandle, world: tuple[KioskWorld, list[Holder]], tmp_path: Path) -> None:
    """The link between East and West cut while both run, under a steady load from an East vendor's and a West
    vendor's kiosks: every process of a centre (its worker and renderer, its kiosks) reaches only its own centre's
    brokers (nftables, infra.centre_link). Each kiosk is answered by its own centre, or gets the kiosk's clear
    no-answer (ただいま証明書を発行できません, refund); when the link heals, nothing has been answered or issued twice
    and both vendors are answered again."""
    unavailable = CentreLink.unavailable()
    assert unavailable is None, unavailable
    w, holders = world
    names = centre_topics(centres_cluster)
    servers = centres_cluster.bootstrap_servers
    centres = {c: v["brokers"] for c, v in centres_cluster.state()["centres"].items()}
    link = CentreLink(broker_ports(servers, centres))
    vendor_centres = {"seven-eleven": "EAST", "lawson": "WEST"}
    key_of = {k.public_key().public_numbers(): i for i, k in enumerate(w.keys)}
    kiosks: dict[str, CentreKiosks] = {}
    for n, (vendor, centre) in enumerate(vendor_centres.items()):
        own = holders[2 * n:2 * n + 2]  # each centre's kiosks with cards of their own
        kiosks[centre] = CentreKiosks(centre, {
            "bootstrap": servers, "requests": names.requests, "responses": names.responses, "claims": names.claims,
            "keys": str(w.root / "keys"), "key_count": len(w.keys), "vendors": {vendor: centre},
            "vendor_centres": vendor_centres, "fail_after": FAIL_AFTER, "probe_after": PROBE_AFTER,
            "response_timeout": 10.0,
            "holders": [{"serial": h.serial, "key": key_of[h.key.public_key().public_numbers()],
                         "certificate": h.certificate_der.hex()} for h in own]})
    workers = {c: CentreWorker(c, centres_cluster, names, w, tmp_path / c.lower()) for c in vendor_centres.values()}
    for centre, worker in workers.items():
        worker.start(centre_gid(centre))
    for worker in workers.values():
        worker.wait_ready()
    recorder = Recorder(servers, names)  # outside both centres (the test's own process), as the third site is
    alive: dict[str, bool] = {}
    try:
        for k in kiosks.values():
            k.start()
        time.sleep(4)  # the first renders of each worker are slow (fonts, seals): steady from here
        steady_at = time.monotonic()
        time.sleep(4)
        cut_at = time.monotonic()
        link.cut()
        time.sleep(CUT_SECONDS)
        healed_at = time.monotonic()
        link.heal()
        time.sleep(SETTLE_SECONDS + 8)
    finally:
        link.heal()
        sessions = [s for k in kiosks.values() for s in k.stop()]
        alive = {c: wk.proc is not None and wk.proc.poll() is None for c, wk in workers.items()}
        counters = {c: wk.stop() for c, wk in workers.items()}
        recorder.stop()

    def ended(s: dict[str, Any]) -> float:
        return float(s["sent"] + s["session_seconds"])

    for s in sorted(sessions, key=lambda s: s["sent"]):
        print(f"session {s['vendor']} sent={s['sent'] - cut_at:+.2f} took={s['session_seconds']:.2f} "
              f"{s['status']} centre={s['centre']}")
    assert alive == {"EAST": True, "WEST": True}, "a worker stopped during a cut shorter than its delivery wait"
    own_centre = {s["vendor"]: vendor_centres[s["vendor"]] for s in sessions}
    # Answered, or the kiosk's clear no-answer: never a refusal the resident did not cause, never a wrong answer.
    assert {s["status"] for s in sessions} <= {"ISSUED", "WITHDRAWN", "SEND_FAILED"}
    before = [s for s in sessions if s["sent"] >= steady_at and ended(s) < cut_at]
    during = [s for s in sessions if cut_at <= s["sent"] and ended(s) < healed_at]
    after = [s for s in sessions if s["sent"] >= healed_at + SETTLE_SECONDS]
    assert {s["vendor"] for s in before} == {s["vendor"] for s in after} == set(vendor_centres)
    assert {(s["status"], s["centre"] == own_centre[s["vendor"]]) for s in before} == {("ISSUED", True)}
    # During the cut a kiosk can read only answers its own centre wrote: whatever was issued came from there.
    assert all(s["centre"] == own_centre[s["vendor"]] for s in during if s["status"] == "ISSUED")
    sent_in_cut = [s for s in sessions if cut_at <= s["sent"] < healed_at]
    assert any(s["status"] != "ISSUED" or s["unresolved_seconds"] > 0 for s in sent_in_cut), \
        "every kiosk was answered in time during the cut: it did not cut"
    assert {s["status"] for s in after} == {"ISSUED"}, "the centres did not answer again after the link healed"

    # Nothing answered or issued twice: one answer per request id (byte-identical copies aside), one certificate id
    # per issued request, and no certificate with two different events (billing counts a certificate id once).
    answered = recorder.one_answer_each()
    certificates = recorder.certificates()
    issued = [s for s in sessions if s["status"] == "ISSUED"]
    assert {s["request_id"] for s in issued} <= answered
    issued_ids = [c for s in issued for c in s["certificate_ids"]]
    assert len(issued_ids) == len(set(issued_ids)) == len(issued)
    assert set(issued_ids) == {certificate_id(s["request_id"], 1) for s in issued} <= certificates
    asked = {certificate_id(s["request_id"], 1) for s in sessions if s["request_id"]}
    assert certificates <= asked, "a certificate issued that no kiosk asked for"
    # A kiosk that gave up refunded (WITHDRAWN: its withdrawal was the first claim; SEND_FAILED: nothing reached a
    # worker): none of those requests may be issued, billed or counted, then or after the heal.
    gave_up = [s for s in sessions if s["status"] != "ISSUED"]
    issued_late = [s["request_id"] for s in gave_up if s["request_id"]
                   and (certificate_id(s["request_id"], 1) in certificates or s["request_id"] in answered)]
    assert not issued_late, f"requests refunded at the kiosk and answered or issued all the same: {issued_late}"
    from_claims = [s for s in issued if s["unresolved_seconds"] > 0]  # given up on, a worker's claim first: printed
    withdrawn = sum(c.get("withdrawn", 0) for c in counters.values())
    phases = {name: Counter(f"{s['vendor']}:{s['status']}" for s in group)
              for name, group in (("before", before), ("during", during), ("after", after))}
    print(f"sessions={len(sessions)} phases={phases} gave_up={len(gave_up)} issued_after_giving_up={len(issued_late)} "
          f"printed_from_claim={len(from_claims)} workers_withdrawn={withdrawn} "
          f"unresolved_max_s={max((s['unresolved_seconds'] for s in sessions), default=0):.1f} "
          f"duplicate_response_copies={sum(n - 1 for n in recorder.copies.values())} counters={counters}")
