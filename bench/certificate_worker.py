"""End-to-end latency and throughput of the certificate worker against the embedded cluster.

Starts an embedded cluster and a worker process (render processes as given), sends pre-signed kiosk
requests (resident-record copies, back side on) at a fixed rate, and prints the answered rate and the
latency percentiles (send → response received), plus the CPU the worker used.

    .venv/bin/python bench/certificate_worker.py [--rate 30] [--seconds 20] [--render-processes 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, TopicPartition

from infra.cluster_control import ClusterHandle
from streams.certificate_worker import WorkerTopics
from tests.streams.kiosk_world import (
    TANABE,
    Kiosk,
    ShiftableClock,
    load_residents,
    make_request,
    make_world,
    resident_with_card,
)
from tests.streams.test_certificate_worker_restart import WorkerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--render-processes", type=int, default=2)
    parser.add_argument("--no-back-side", action="store_true")
    parser.add_argument("--log-level", default="warning", help="the worker's log level (debug: per-batch stage times)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = ClusterHandle.start(brokers=3, data_dir=root / "cluster")
        try:
            run(cluster, root, args)
        finally:
            cluster.stop()


def run(cluster: ClusterHandle, root: Path, args: argparse.Namespace) -> None:
    world = make_world(root / "world", key_count=16)
    holders = [world.card(i) for i in range(16)]
    load_residents(world.store, [resident_with_card(world, h, TANABE, 3 * i) for i, h in enumerate(holders)])

    def topic(partitions: int) -> str:
        name = f"bench.{uuid.uuid4().hex[:10]}"
        cluster.create_topic(name, partitions, 3)
        return name

    names = WorkerTopics(requests=topic(6), responses=topic(12), issued=topic(6), residents=topic(1),
                         revocations=topic(1), disasters=topic(1), dlq=topic(1))
    worker = WorkerProcess({"bootstrap": cluster.bootstrap_servers, "topics": dataclasses.asdict(names),
                            "group_id": "bench-worker", "root": str(root / "worker"),
                            "snapshots": str(world.store.root), "pki": str(world.pki.path),
                            "repository_url": world.pki.endpoints.base_url,
                            "render_processes": args.render_processes, "back_side": not args.no_back_side,
                            "log_level": args.log_level})
    kiosk = Kiosk(cluster.bootstrap_servers, names)
    _answer_promptly(kiosk, cluster.bootstrap_servers)
    clock = ShiftableClock()
    count = int(args.rate * args.seconds)
    print(f"signing {count} requests ...", flush=True)
    requests = [make_request(holders[i % len(holders)], clock, household_scope="WHOLE_HOUSEHOLD")
                for i in range(count)]
    worker.start()
    worker.wait_ready(120)
    pid = worker.proc.pid  # type: ignore[union-attr]
    load_before = os.getloadavg()[0]
    cpu_before, all_before, own_before = _cpu(pid), _cpu(os.getpid()), _own_cpu()
    main_before = _cpu(pid, descendants=False)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            kiosk.poll(0.05)
            now = time.perf_counter()
            for rid in kiosk.answers:
                received.setdefault(rid, now)

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    start = time.perf_counter()
    for i, request in enumerate(requests):
        delay = start + i / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[request["request_id"]] = time.perf_counter()
        kiosk.producer.produce(names.requests, kiosk.requests.encode(request), request["request_id"].encode())
        kiosk.producer.poll(0)
    kiosk.producer.flush(10)
    deadline = time.perf_counter() + 60
    while len(received) < count and time.perf_counter() < deadline:
        time.sleep(0.1)
    elapsed = max(received.values()) - start if received else float("nan")
    stop.set()
    collector.join(5)
    cpu = _cpu(pid) - cpu_before
    main_cpu = _cpu(pid, descendants=False) - main_before
    own = _own_cpu() - own_before
    others = _cpu(os.getpid()) - all_before - own - cpu  # the embedded cluster's process
    worker.stop()
    kiosk.close()
    latencies = sorted((received[r] - sent[r]) * 1000 for r in received)
    issued = sum(1 for answers in kiosk.answers.values() if answers[0]["status"] == "ISSUED")
    print(f"render processes {args.render_processes}, back side {not args.no_back_side}, "
          f"offered {args.rate:.0f}/s for {args.seconds:.0f} s")
    print(f"answered {len(received)}/{count} ({issued} issued) in {elapsed:.1f} s = {len(received) / elapsed:.1f}/s")
    print(f"latency ms: p50 {_pct(latencies, 50):.0f}  p90 {_pct(latencies, 90):.0f}  "
          f"p99 {_pct(latencies, 99):.0f}  max {latencies[-1]:.0f}  mean {statistics.mean(latencies):.0f}")
    print(f"worker CPU (all its processes): {cpu:.1f} s = {cpu / elapsed:.2f} cores, "
          f"{cpu * 1000 / max(len(received), 1):.0f} ms per request "
          f"(main process {main_cpu * 1000 / max(len(received), 1):.1f} ms, "
          f"renderers {(cpu - main_cpu) * 1000 / max(len(received), 1):.1f} ms)")
    print(f"cluster CPU {others / elapsed:.2f} cores, load generator (this process) {own / elapsed:.2f} cores; "
          f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")


def _answer_promptly(kiosk: Kiosk, bootstrap: str) -> None:
    """Read responses the way the kiosks' response router does (kiosk_sim.response_router): the embedded
    mock broker holds a fetch for fetch.wait.max.ms (500 ms by default) even when data arrives meanwhile,
    which would add up to half a second to every measured answer."""
    kiosk.consumer.close()
    kiosk.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-kiosk-{uuid.uuid4().hex}",
                               "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024,
                               "max.partition.fetch.bytes": 16 * 1024 * 1024, "fetch.wait.max.ms": 5})
    topic = kiosk.names.responses
    partitions = kiosk.consumer.list_topics(topic, timeout=10).topics[topic].partitions
    kiosk.consumer.assign([TopicPartition(topic, p, 0) for p in partitions])


def _cpu(pid: int, descendants: bool = True) -> float:
    """CPU seconds of a process and (unless told) its descendants, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir() if descendants else ():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


if __name__ == "__main__":
    main()
