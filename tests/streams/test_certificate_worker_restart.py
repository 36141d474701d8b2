"""Exactly once across crashes: the worker killed (SIGKILL) and restarted under load answers every
request once and emits every certificate once; a batch left in doubt is completed from the ledger."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS, ENVIRONMENT_VARIABLE
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.issuance_archive import IssuanceArchive
from streams.certificate_rendering import RENDERER_DEATHS_IN_A_ROW
from streams.certificate_worker import (
    CERTIFICATE_HEADER,
    REQUEST_HEADER,
    WorkerOptions,
    WorkerTopics,
    certificate_id,
)
from streams.request_ledger import Claim, IssuedMessage, RequestLedger
from tests.platforms import make_platform
from tests.streams.kiosk_world import (
    ANCHOR,
    TANABE,
    Holder,
    Kiosk,
    KioskWorld,
    ShiftableClock,
    load_residents,
    make_request,
    make_world,
    resident_with_card,
)
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KioskWorld, list[Holder]]]:
    w = make_world(tmp_path_factory.mktemp("restart-world"))
    holders = [w.card(i) for i in range(6)]
    load_residents(w.store, [resident_with_card(w, h, TANABE, 100 + i) for i, h in enumerate(holders)])
    yield w, holders
    w.server.shutdown()


def private_topics(topic_factory) -> WorkerTopics:  # type: ignore[no-untyped-def]
    return WorkerTopics(requests=topic_factory(4), responses=topic_factory(4), issued=topic_factory(3),
                        residents=topic_factory(1), revocations=topic_factory(1), disasters=topic_factory(1),
                        dlq=topic_factory(1))


class WorkerProcess:
    def __init__(self, config: dict[str, object]) -> None:
        self.config = config
        self.proc: subprocess.Popen[str] | None = None

    @classmethod
    def for_world(cls, cluster: ClusterHandle, names: WorkerTopics, group_id: str, w: Any, root: Path,
                  **options: object) -> WorkerProcess:
        """A worker on the test world's PKI and snapshot store, with options of
        tests.streams.certificate_worker_process (render_processes, render_time_limit, ...)."""
        return cls({"bootstrap": cluster.bootstrap_servers, "topics": dataclasses.asdict(names),
                    "group_id": group_id, "root": str(root), "snapshots": str(w.store.root),
                    "pki": str(w.pki.path), "repository_url": w.pki.endpoints.base_url, **options})

    def start(self, crash_at: str | None = None, stderr: Path | None = None) -> None:
        """crash_at: arm that crash point (infra.crash_points) in this run only; stderr: write it to that file."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop(ENVIRONMENT_VARIABLE, None)
        if crash_at is not None:
            env[ENVIRONMENT_VARIABLE] = crash_at
        with open(stderr, "w") if stderr is not None else open(os.devnull) as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.streams.certificate_worker_process",
                                          json.dumps(self.config)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                         env=env, stderr=err if stderr is not None else None)

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "READY":
                return
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode} before it was ready")
        raise AssertionError("worker not ready in time")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def counters(self) -> dict[str, object]:
        """Stop the worker (SIGTERM) and return the counters it printed when it stopped."""
        self.stop()
        assert self.proc is not None and self.proc.stdout is not None
        assert self.proc.returncode == 0, f"the worker exited with {self.proc.returncode}"
        lines = [line for line in self.proc.stdout.read().splitlines() if line.startswith("COUNTERS ")]
        assert lines, "the worker printed no counters"
        return dict(json.loads(lines[-1].removeprefix("COUNTERS ")))


def test_killed_and_restarted_under_load_every_request_answered_once_no_certificate_twice(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path) -> None:
    w, holders = world
    names = private_topics(topic_factory)
    worker = WorkerProcess.for_world(cluster, names, group_id, w, tmp_path)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    clock = ShiftableClock()
    rng = random.Random(5)
    requests = []
    for i in range(90):
        kind = "FAMILY_REGISTER" if i % 15 == 7 else "RESIDENT_RECORD"  # some refusals among them
        copies = rng.randint(1, 3)
        requests.append(make_request(holders[i % len(holders)], clock, certificate_type=kind, copies=copies))
    replayed = requests[40]

    def send_all() -> None:
        for i, request in enumerate(requests):
            kiosk.send(request)
            if i == 45:
                kiosk.send(replayed)  # a replay in the middle of the load
            time.sleep(0.02)

    try:
        worker.start()
        worker.wait_ready()
        sender = threading.Thread(target=send_all)
        sender.start()
        for pause in (0.4, 0.5, 0.3):
            time.sleep(pause)
            worker.kill()
            worker.start()
            worker.wait_ready()
        sender.join()
        ids = [r["request_id"] for r in requests]
        kiosk.wait_for(ids, timeout=60)
        kiosk.wait_for([replayed["request_id"]], timeout=30, count=2)
        time.sleep(1.0)  # anything emitted twice would arrive by now
        kiosk.poll(0.5)
    finally:
        worker.stop()
        kiosk.close()

    answers = Counter({rid: len(a) for rid, a in kiosk.answers.items()})
    assert answers[replayed["request_id"]] == 2
    assert {rid for rid, n in answers.items() if n != 1} == {replayed["request_id"]}
    assert set(answers) == set(ids)
    first, second = kiosk.answers[replayed["request_id"]]
    assert first["status"] == "ISSUED" and second["reason_code"] == "REPLAYED_REQUEST"

    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    events = [serde.decode(m.value()) for m in read_topic(cluster.bootstrap_servers, names.issued)]
    certificate_ids = [e["certificate_id"] for e in events]
    assert len(certificate_ids) == len(set(certificate_ids)), "a certificate was emitted twice"
    issued = {r["request_id"]: r for r in requests if kiosk.answers[r["request_id"]][0]["status"] == "ISSUED"}
    expected = {certificate_id(rid, n) for rid, r in issued.items() for n in range(1, r["copies"] + 1)}
    assert set(certificate_ids) == expected
    refused = [r for r in requests if kiosk.answers[r["request_id"]][0]["status"] == "REFUSED"]
    assert {kiosk.answers[r["request_id"]][0]["reason_code"] for r in refused} == {"NOT_AVAILABLE_VIA_BCL"}
    assert len(refused) == 6


def test_batch_in_doubt_is_completed_without_emitting_twice(cluster: ClusterHandle, topic_factory, group_id: str,
                                                            world, tmp_path: Path) -> None:
    """A crash after the response went out but before the certificates did: the restart sends only the
    missing CertificateIssued events, and does not answer the request again."""
    w, holders = world
    names = private_topics(topic_factory)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    registry = FileSchemaRegistry()
    responses = AvroSerde(registry, CONTRACTS[topics.KIOSK_RESPONSES])
    issued_serde = AvroSerde(registry, CONTRACTS[topics.CERTIFICATES_ISSUED])
    request = make_request(holders[0], ShiftableClock(), copies=2)
    kiosk.send(request)  # the request at offset 0 of its partition
    position = next((m.topic(), m.partition(), m.offset()) for m in read_topic(cluster.bootstrap_servers,
                                                                                names.requests))
    rid = request["request_id"]
    ids = [certificate_id(rid, 1), certificate_id(rid, 2)]
    response = responses.encode({"request_id": rid, "status": "ISSUED", "reason_code": None, "message": None,
                                 "certificate_ids": ids, "pdf": b"%PDF-1.7 stand-in", "pages": 2, "fee_yen": 400,
                                 "responded_at": ANCHOR})
    events = [IssuedMessage(cid, TANABE.encode(), issued_serde.encode({
        "certificate_id": cid, "request_id": rid, "municipality_code": TANABE, "certificate_type": "RESIDENT_RECORD",
        "copy_number": n, "copies": 2, "pages": 1, "kiosk_id": "KIOSK-0001", "kiosk_vendor": "seven-eleven",
        "centre": "EAST", "kiosk_municipality_code": TANABE, "issued_at": ANCHOR, "fee_yen": 200}))
        for n, cid in enumerate(ids, start=1)]
    platform = make_platform(tmp_path, cluster, pki=w.pki, snapshot_store=w.store)
    ledger = RequestLedger(platform.settings.worker_ledger_file)
    ledger.claim([Claim(position, rid, "ISSUED", rid.encode(), response, events, ANCHOR.timestamp(), TANABE,
                        (b"\x89PNG front",))])
    ledger.close()
    # What the crashed run had already sent: the response and the first copy's event.
    kiosk.producer.produce(names.responses, response, rid.encode(),
                           headers=[(REQUEST_HEADER, f"{position[0]}:{position[1]}:{position[2]}:{rid}".encode())])
    kiosk.producer.produce(names.issued, events[0].value, events[0].key, headers=[(CERTIFICATE_HEADER,
                                                                                   ids[0].encode())])
    kiosk.producer.flush(10)

    worker = platform.certificate_worker(topic_names=names, group_id=group_id, options=WorkerOptions(back_side=False),
                                         clock=ShiftableClock())
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    try:
        assert ready.wait(60)
        follow_up = make_request(holders[1], ShiftableClock())
        kiosk.wait_for([kiosk.send(follow_up)])  # the worker is past the in-doubt request by now
    finally:
        stop.set()
        thread.join(30)
    kiosk.poll(0.5)
    kiosk.close()
    assert worker.counters.recovered == 1
    assert worker.counters.redelivered == 1  # the in-doubt request itself was skipped when re-delivered
    assert len(kiosk.answers[rid]) == 1
    emitted = [issued_serde.decode(m.value())["certificate_id"] for m in read_topic(cluster.bootstrap_servers,
                                                                                       names.issued)]
    assert sorted(e for e in emitted if e in ids) == sorted(ids)
    assert (platform.settings.issuance_dir / "records" / f"{ids[1]}.json").exists()
    assert RequestLedger(platform.settings.worker_ledger_file).counts() == {"delivered": 2}


def _start_in_thread(worker) -> tuple[threading.Thread, threading.Event, threading.Event]:  # type: ignore[no-untyped-def]
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    for _ in range(600):
        if ready.wait(0.1) or not thread.is_alive():
            break
    return thread, stop, ready


def test_a_claim_the_archive_refuses_is_answered_refused_at_restart_not_a_crash_loop(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path) -> None:
    """Issue 8.1: the claim of `abc|K-1` (left by a worker that did not check ids) made every restart die
    while recovering it. Now the recovery refuses it (ISSUE_FAILED) and the worker serves."""
    w, holders = world
    names = private_topics(topic_factory)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    registry = FileSchemaRegistry()
    responses = AvroSerde(registry, CONTRACTS[topics.KIOSK_RESPONSES])
    issued_serde = AvroSerde(registry, CONTRACTS[topics.CERTIFICATES_ISSUED])
    rid = "abc|K-1"
    kiosk.send(make_request(holders[0], ShiftableClock(), request_id=rid))
    position = next((m.topic(), m.partition(), m.offset()) for m in read_topic(cluster.bootstrap_servers,
                                                                                names.requests))
    cid = certificate_id(rid, 1)
    response = responses.encode({"request_id": rid, "status": "ISSUED", "reason_code": None, "message": None,
                                 "certificate_ids": [cid], "pdf": b"%PDF-1.7 stand-in", "pages": 1, "fee_yen": 200,
                                 "responded_at": ANCHOR})
    event = IssuedMessage(cid, TANABE.encode(), issued_serde.encode({
        "certificate_id": cid, "request_id": rid, "municipality_code": TANABE, "certificate_type": "RESIDENT_RECORD",
        "copy_number": 1, "copies": 1, "pages": 1, "kiosk_id": "KIOSK-0001", "kiosk_vendor": "seven-eleven",
        "centre": "EAST", "kiosk_municipality_code": TANABE, "issued_at": ANCHOR, "fee_yen": 200}))
    platform = make_platform(tmp_path, cluster, pki=w.pki, snapshot_store=w.store)
    ledger = RequestLedger(platform.settings.worker_ledger_file)
    ledger.claim([Claim(position, rid, "ISSUED", rid.encode(), response, (event,), ANCHOR.timestamp(), TANABE,
                        (b"\x89PNG front",))])
    ledger.close()
    for attempt in range(2):  # the first restart recovers it; the next one has nothing in doubt
        worker = platform.certificate_worker(topic_names=names, group_id=group_id,
                                             options=WorkerOptions(back_side=False), clock=ShiftableClock())
        thread, stop, ready = _start_in_thread(worker)
        try:
            assert ready.is_set(), f"restart {attempt + 1}: the worker died recovering the claim"
            follow_up = make_request(holders[1], ShiftableClock())
            assert kiosk.ask(follow_up)["status"] == "ISSUED"
        finally:
            stop.set()
            thread.join(30)
    kiosk.poll(0.5)
    kiosk.close()
    assert [(a["status"], a["reason_code"]) for a in kiosk.answers[rid]] == [("REFUSED", "ISSUE_FAILED")]
    emitted = [issued_serde.decode(m.value())["request_id"] for m in read_topic(cluster.bootstrap_servers,
                                                                               names.issued)]
    assert rid not in emitted
    assert RequestLedger(platform.settings.worker_ledger_file).counts() == {"delivered": 3}


def test_after_the_cluster_restarts_new_requests_are_answered_and_old_ids_are_still_replays(
        world, tmp_path: Path) -> None:
    """Issue 8.2: the ledger was keyed by (topic, partition, offset); a new cluster starts at offset 0 again,
    so every new request landed on an answered position and was skipped: no answer, no dead letter. The
    request topic has one partition, so the replay lands on the very offset it had on the first cluster."""
    w, holders = world
    requests_per_run = 8

    def run_on(cluster: ClusterHandle, names: WorkerTopics, requests: list[dict]) -> Kiosk:  # type: ignore[type-arg]
        for name, partitions in ((names.requests, 1), (names.responses, 2), (names.issued, 2),
                                 (names.residents, 1), (names.revocations, 1), (names.disasters, 1), (names.dlq, 1)):
            cluster.create_topic(name, partitions, 1)
        platform = make_platform(tmp_path / "worker", cluster, pki=w.pki, snapshot_store=w.store)
        worker = platform.certificate_worker(topic_names=names, group_id="restart-worker",
                                             options=WorkerOptions(back_side=False), clock=ShiftableClock())
        thread, stop, ready = _start_in_thread(worker)
        kiosk = Kiosk(cluster.bootstrap_servers, names)
        try:
            assert ready.is_set()
            for request in requests:
                kiosk.send(request)
            kiosk.wait_for([r["request_id"] for r in requests], timeout=60)
            time.sleep(0.5)
            kiosk.poll(0.5)
        finally:
            stop.set()
            thread.join(30)
        return kiosk

    names = WorkerTopics(requests="t.requests", responses="t.responses", issued="t.issued",
                         residents="t.residents", revocations="t.revocations", disasters="t.disasters",
                         dlq="t.dlq")
    clock = ShiftableClock()
    first = [make_request(holders[i % len(holders)], clock) for i in range(requests_per_run)]
    second = [make_request(holders[i % len(holders)], clock) for i in range(requests_per_run)]
    at = 3
    replay = first[at]
    answers = []
    for n, batch in enumerate((first, [*second[:at], replay, *second[at:]])):
        cluster = ClusterHandle.start(brokers=1, data_dir=tmp_path / f"cluster-{n}")
        try:
            kiosk = run_on(cluster, names, batch)
            answers.append(kiosk.answers)
            kiosk.close()
        finally:
            cluster.stop()
    before, after = answers
    assert all(before[r["request_id"]][0]["status"] == "ISSUED" for r in first)
    assert all(len(after[r["request_id"]]) == 1 and after[r["request_id"]][0]["status"] == "ISSUED"
               for r in second)
    assert [a["reason_code"] for a in after[replay["request_id"]]] == ["REPLAYED_REQUEST"]


CRASH_POINTS = ("worker.mid_render", "worker.after_claim", "worker.after_responses", "worker.before_commit")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_each_point_is_recovered_every_request_answered_once_nothing_issued_twice(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path, point: str) -> None:
    """Issue 8.12: the worker dies hard (os._exit) at the point on its first batch; the restart answers every
    request exactly once, emits and archives every certificate exactly once (billing counts the events)."""
    w, holders = world
    names = private_topics(topic_factory)
    worker = WorkerProcess.for_world(cluster, names, group_id, w, tmp_path)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    clock = ShiftableClock()
    requests = [make_request(holders[i % len(holders)], clock, copies=1 + i % 3,
                             certificate_type="FAMILY_REGISTER" if i == 4 else "RESIDENT_RECORD")
                for i in range(8)]
    try:
        worker.start(crash_at=point)
        worker.wait_ready()
        for request in requests:
            kiosk.send(request)
        assert worker.wait_exit(60) == CRASH_EXIT_STATUS, "the worker did not stop at the crash point"
        worker.start()
        worker.wait_ready()
        ids = [r["request_id"] for r in requests]
        kiosk.wait_for(ids, timeout=60)
        time.sleep(1.0)  # anything emitted twice would arrive by now
        kiosk.poll(0.5)
    finally:
        worker.stop()
        kiosk.close()
    assert {rid: len(kiosk.answers[rid]) for rid in ids} == dict.fromkeys(ids, 1)
    statuses = Counter(kiosk.answers[rid][0]["status"] for rid in ids)
    assert statuses == {"ISSUED": 7, "REFUSED": 1}
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    events = [serde.decode(m.value())["certificate_id"] for m in read_topic(cluster.bootstrap_servers, names.issued)]
    expected = {certificate_id(r["request_id"], n) for r in requests if r["certificate_type"] == "RESIDENT_RECORD"
                for n in range(1, r["copies"] + 1)}
    assert sorted(events) == sorted(expected), "a certificate was emitted twice or not at all"
    archive = IssuanceArchive(make_platform(tmp_path).settings.issuance_dir)
    assert all(archive.get(cid) is not None for cid in expected)
    assert RequestLedger(make_platform(tmp_path).settings.worker_ledger_file).counts() == {"delivered": len(ids)}


def _send_together(kiosk: Kiosk, requests: list[dict]) -> None:  # type: ignore[type-arg]
    """Produced at once, so that the worker takes them in one or two batches."""
    for request in requests:
        kiosk.producer.produce(kiosk.names.requests, kiosk.requests.encode(request), request["request_id"].encode())
    kiosk.producer.flush(10)


def test_a_request_that_kills_its_renderer_is_refused_the_others_issued_once_no_crash_loop(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path) -> None:
    """Issue 8.1: a request whose rendering kills the renderer process (os._exit here; a segfault or an OOM
    kill alike) broke the pool, the worker stopped with nothing claimed, and every restart re-decided the
    request and died again. Now the jobs of the broken pool are rendered again one at a time, each alone in
    a fresh renderer: the one that kills it again is refused (ISSUE_FAILED), the others are issued once,
    the worker stays up, and a restart (the point still armed) does not crash on it."""
    w, holders = world
    names = private_topics(topic_factory)
    worker = WorkerProcess.for_world(cluster, names, group_id, w, tmp_path, render_processes=2)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    clock = ShiftableClock()
    requests = [make_request(holders[i % len(holders)], clock, copies=1 + i % 2) for i in range(6)]
    poisoned = requests[2]["request_id"]
    crash_at = f"worker.mid_render:{poisoned}"  # armed in every renderer process, for that request only
    ids = [r["request_id"] for r in requests]
    try:
        worker.start(crash_at=crash_at)
        worker.wait_ready()
        _send_together(kiosk, requests)
        kiosk.wait_for(ids, timeout=90)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
        follow_up = make_request(holders[0], clock)
        assert kiosk.ask(follow_up, timeout=60)["status"] == "ISSUED"  # the rebuilt pool serves
        first_run = worker.counters()
        worker.start(crash_at=crash_at)  # a restart with the poisoned request still in the topic
        worker.wait_ready()
        kiosk.send(next(r for r in requests if r["request_id"] == poisoned))  # sent again: answered, not rendered
        kiosk.wait_for([poisoned], timeout=60, count=2)
        assert kiosk.ask(make_request(holders[1], clock), timeout=60)["status"] == "ISSUED"
        second_run = worker.counters()
        time.sleep(0.5)  # anything emitted twice would arrive by now
        kiosk.poll(0.5)
    finally:
        worker.stop()
        kiosk.close()
    assert [(a["status"], a["reason_code"]) for a in kiosk.answers[poisoned]] == [
        ("REFUSED", "ISSUE_FAILED"), ("REFUSED", "REPLAYED_REQUEST")]
    others = [r for r in requests if r["request_id"] != poisoned]
    assert {r["request_id"]: [a["status"] for a in kiosk.answers[r["request_id"]]] for r in others} == {
        r["request_id"]: ["ISSUED"] for r in others}
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    events = [serde.decode(m.value()) for m in read_topic(cluster.bootstrap_servers, names.issued)]
    assert poisoned not in {e["request_id"] for e in events}
    certificate_ids = [e["certificate_id"] for e in events]
    assert len(certificate_ids) == len(set(certificate_ids)), "a certificate was emitted twice"
    assert {certificate_id(r["request_id"], n) for r in others for n in range(1, r["copies"] + 1)} <= set(
        certificate_ids)
    assert first_run["renderer_killed"] == 1 and first_run["refusals"] == {"ISSUE_FAILED": 1}  # type: ignore[comparison-overlap]
    assert second_run["renderer_killed"] == 0 and second_run["recovered"] == 0
    assert RequestLedger(make_platform(tmp_path).settings.worker_ledger_file).counts() == {"delivered": 9}


def _renderer_processes(worker_pid: int) -> list[int]:
    """The worker's renderer processes: its children started by multiprocessing's spawn (not its resource
    tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == worker_pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_hung_renderers_are_killed_after_the_time_limit_and_their_requests_issued(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path) -> None:
    """A renderer that hangs (here: stopped with SIGSTOP; a stuck native call alike) used to hold its
    requests, and every later one, for ever. A render not done within the time limit has its pool's
    processes killed; its jobs are rendered again one by one and issued once, and the worker goes on."""
    w, holders = world
    names = private_topics(topic_factory)
    worker = WorkerProcess.for_world(cluster, names, group_id, w, tmp_path, render_processes=2, render_time_limit=3.0)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    clock = ShiftableClock()
    requests = [make_request(holders[i % len(holders)], clock) for i in range(4)]
    ids = [r["request_id"] for r in requests]
    try:
        worker.start()
        worker.wait_ready()
        assert worker.proc is not None
        renderers = _renderer_processes(worker.proc.pid)
        assert len(renderers) == 2
        for pid in renderers:
            os.kill(pid, signal.SIGSTOP)
        _send_together(kiosk, requests)
        kiosk.wait_for(ids, timeout=90)
        assert worker.proc.poll() is None, "the worker stopped"
        assert kiosk.ask(make_request(holders[0], clock), timeout=60)["status"] == "ISSUED"
        assert not set(renderers) & set(_renderer_processes(worker.proc.pid)), "the hung renderers are still there"
        counters = worker.counters()
    finally:
        worker.stop()
        kiosk.close()
    assert {i: [a["status"] for a in kiosk.answers[i]] for i in ids} == {i: ["ISSUED"] for i in ids}
    assert counters["renderer_killed"] == 0 and counters["refusals"] == {}


def test_a_renderer_that_dies_on_every_request_stops_the_worker_without_refusing_the_batch(
        cluster: ClusterHandle, topic_factory, group_id: str, world, tmp_path: Path) -> None:
    """The bound: when the renderer dies on every job, it is the renderer (font, memory, installation), not
    the requests. After a few deaths in a row, each of a job rendered alone, the worker stops with an error
    instead of refusing requests one by one for ever; the batch it was on is not claimed, so once the
    renderer is fixed a restart issues it."""
    w, holders = world
    names = private_topics(topic_factory)
    worker = WorkerProcess.for_world(cluster, names, group_id, w, tmp_path, render_processes=1)
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    clock = ShiftableClock()
    requests = [make_request(holders[i % len(holders)], clock) for i in range(4)]
    ids = [r["request_id"] for r in requests]
    try:
        # Every renderer process dies on its first render.
        worker.start(crash_at="worker.mid_render", stderr=tmp_path / "stderr.log")
        worker.wait_ready()
        _send_together(kiosk, requests)
        status = worker.wait_exit(120)
        assert status not in (0, CRASH_EXIT_STATUS), f"the worker exited with {status}"
        stderr = (tmp_path / "stderr.log").read_text()
        assert f"died on {RENDERER_DEATHS_IN_A_ROW} requests in a row" in stderr and "renderer is broken" in stderr
        kiosk.poll(1.0)
        refused_before = {rid for rid, answers in kiosk.answers.items()}
        assert len(refused_before) < RENDERER_DEATHS_IN_A_ROW  # not every request refused: the worker stopped
        worker.start()  # the renderer is fixed
        worker.wait_ready()
        kiosk.wait_for(ids, timeout=90)
        time.sleep(0.5)
        kiosk.poll(0.5)
    finally:
        worker.stop()
        kiosk.close()
    assert all(len(kiosk.answers[rid]) == 1 for rid in ids)
    assert {rid for rid in ids if kiosk.answers[rid][0]["status"] == "ISSUED"} == set(ids) - refused_before
    assert all(kiosk.answers[rid][0]["reason_code"] == "ISSUE_FAILED" for rid in refused_before)
