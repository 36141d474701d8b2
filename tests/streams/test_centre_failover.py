"""Two issuing centres against real processes: a 4-broker embedded cluster (East brokers 1-2, West 3-4), one
certificate worker process per centre (each with its renderer process, its own ledger and archive), kiosks of an
East vendor and a West vendor under steady load through kiosk_sim's KioskConnection (failover included).

- East is lost whole (its worker's process group SIGKILLed, its brokers down): every request is answered once,
  East's kiosks are answered by West within the failover bound, nothing is issued or billed twice; East comes
  back and its kiosks are answered by it again.
- Both centres claim the same requests at once (what a link cut heals into: a kiosk that gave up on one centre
  while that centre was still working): one answer per request, one certificate.
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
from infra.cluster_control import ClusterHandle
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskOutcome, KioskTerminal, KioskTopics
from kiosk_sim.transport import InProcessTransport
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.centre_claims import centre_group_id
from streams.certificate_worker import CERTIFICATE_HEADER, WorkerTopics, certificate_id
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

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.streams.certificate_worker_process",
                                      json.dumps(self.config)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)

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


@dataclasses.dataclass
class Session:
    vendor: str
    sent: float  # monotonic
    outcome: KioskOutcome


class Load:
    """Kiosk terminals in threads, one session after another each, until stopped."""

    def __init__(self, connection: KioskConnection, holders: list[Holder], vendors: dict[str, str]) -> None:
        self.sessions: list[Session] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        clock = ShiftableClock()
        self._threads = []
        for i, (vendor, centre) in enumerate(vendors.items()):
            for j in range(2):
                holder = holders[(2 * i + j) % len(holders)]
                terminal = KioskTerminal(f"{vendor}-{j}", vendor, centre, CHIYODA)
                kiosk = Kiosk(terminal, connection, clock=clock)
                card = JpkiCard(auth=CardKey(holder.key, holder.certificate_der), auth_pin=PIN)
                self._threads.append(threading.Thread(target=self._run, args=(kiosk, card), daemon=True))

    def _run(self, kiosk: Kiosk, card: JpkiCard) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            outcome = kiosk.issue(InProcessTransport(card), PIN, CertificateChoice(TANABE, "RESIDENT_RECORD"))
            with self._lock:
                self.sessions.append(Session(kiosk.terminal.vendor, sent, outcome))
            time.sleep(0.2)

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


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
    connection = KioskConnection(servers, FileSchemaRegistry(), topics=KioskTopics(names.requests, names.responses),
                                 response_timeout=30, centres=CentreAvailability(FAIL_AFTER, PROBE_AFTER),
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
