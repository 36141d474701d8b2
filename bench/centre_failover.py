"""Losing a whole issuing centre under a steady kiosk load: failover time and latency before, during and after.

A 4-broker embedded cluster with two centres (East brokers 1-2, West 3-4), one certificate worker process per
centre (renderer processes as given), kiosks of an East vendor (seven-eleven) and a West vendor (lawson) sending
at a fixed open-loop rate through kiosk_sim's KioskConnection (failover after --fail-after seconds). After
--before seconds East is lost whole (its worker's process group SIGKILLed, its brokers down), restored after
--during seconds (brokers up, worker started again), and the load goes on --after seconds more.

Prints the machine, the time from the loss to the first answer from West to an East kiosk, the p50/p99 latency
(session: card, send, answer) of each phase, the requests slower than 10 s, unanswered, and answered twice.

    .venv/bin/python bench/centre_failover.py [--rate 20] [--before 10] [--during 15] [--after 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine
from domain.issuing_centres import CentreAvailability
from infra.cluster_control import ClusterHandle
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskTerminal, KioskTopics
from kiosk_sim.transport import InProcessTransport
from schemas.registry import FileSchemaRegistry
from streams.centre_claims import centre_group_id
from tests.streams.kiosk_load import Session
from tests.streams.kiosk_world import (
    CHIYODA,
    PIN,
    TANABE,
    ShiftableClock,
    load_residents,
    make_world,
    resident_with_card,
)
from tests.streams.test_centre_failover import CentreWorker, Recorder, centre_topics

VENDORS = {"seven-eleven": "EAST", "lawson": "WEST"}


def _percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no requests"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"n={len(ordered)} p50={statistics.median(ordered):.2f}s p99={p99:.2f}s max={ordered[-1]:.2f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="kiosk sessions per second (both vendors)")
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--during", type=float, default=15.0)
    parser.add_argument("--after", type=float, default=15.0)
    parser.add_argument("--render-processes", type=int, default=1, help="per centre")
    parser.add_argument("--fail-after", type=float, default=4.0, help="the kiosks' failover time (seconds)")
    parser.add_argument("--probe-after", type=float, default=5.0)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = ClusterHandle.start(brokers=4, data_dir=root / "cluster", centres=True,
                                      centre_groups={centre_group_id(c): c for c in ("EAST", "WEST")})
        world = make_world(root / "world")
        holders = [world.card(i) for i in range(16)]
        load_residents(world.store, [resident_with_card(world, h, TANABE, 500 + i) for i, h in enumerate(holders)])
        try:
            names = centre_topics(cluster)
            workers = {c: CentreWorker(c, cluster, names, world, root / c.lower()) for c in ("EAST", "WEST")}
            for w in workers.values():
                w.config["render_processes"] = args.render_processes
                w.start()
            for w in workers.values():
                w.wait_ready()
            recorder = Recorder(cluster.bootstrap_servers, names)
            connection = KioskConnection(cluster.bootstrap_servers, FileSchemaRegistry(),
                                         topics=KioskTopics(names.requests, names.responses, names.claims),
                                         response_timeout=60,
                                         centres=CentreAvailability(args.fail_after, args.probe_after),
                                         vendor_centres=VENDORS).start()
            sessions: list[Session] = []
            lock = threading.Lock()
            clock = ShiftableClock()
            stop = threading.Event()

            def session(n: int) -> None:
                vendor = list(VENDORS)[n % 2]
                holder = holders[n % len(holders)]
                kiosk = Kiosk(KioskTerminal(f"{vendor}-{n % 8}", vendor, VENDORS[vendor], CHIYODA), connection,
                              clock=clock)
                card = JpkiCard(auth=CardKey(holder.key, holder.certificate_der), auth_pin=PIN)
                sent = time.monotonic()
                outcome = kiosk.issue(InProcessTransport(card), PIN, CertificateChoice(TANABE, "RESIDENT_RECORD"))
                with lock:
                    sessions.append(Session(vendor, sent, outcome))

            pool = ThreadPoolExecutor(max_workers=256)

            def arrivals() -> None:
                n, start = 0, time.monotonic()
                while not stop.is_set():
                    pool.submit(session, n)
                    n += 1
                    time.sleep(max(0.0, start + n / args.rate - time.monotonic()))

            dispatcher = threading.Thread(target=arrivals, daemon=True)
            started = time.monotonic()
            dispatcher.start()
            time.sleep(args.before)
            lost_at = time.monotonic()
            workers["EAST"].kill_centre()
            cluster.fail_centre("EAST")
            time.sleep(args.during)
            restoring_at = time.monotonic()
            cluster.restore_centre("EAST")
            workers["EAST"].start()
            workers["EAST"].wait_ready()
            ready_at = time.monotonic()
            time.sleep(args.after)
            stop.set()
            dispatcher.join()
            pool.shutdown(wait=True)
            connection.close()
            counters = {c: w.stop() for c, w in workers.items()}
            recorder.stop()
        finally:
            cluster.stop()
            world.server.shutdown()
    warm = started + 3  # the first renders (fonts, seals) are not the steady state
    outcomes = Counter(s.outcome.status.value for s in sessions)
    east = [s for s in sessions if s.vendor == "seven-eleven"]
    west_answers = [s.sent + s.outcome.session_seconds for s in east
                    if s.outcome.centre == "WEST" and s.sent + s.outcome.session_seconds >= lost_at]
    print(f"rate {args.rate:g}/s, {len(sessions)} sessions ({len(sessions) / (time.monotonic() - started):.1f}/s "
          f"overall), outcomes {dict(outcomes)}; East lost for {restoring_at - lost_at:.1f} s, its worker ready "
          f"{ready_at - restoring_at:.1f} s after its brokers were back")
    if west_answers:
        print(f"failover: first answer from West to an East kiosk {min(west_answers) - lost_at:.2f} s after the loss")
    for name, lo, hi in (("before", warm, lost_at), ("during", lost_at, restoring_at),
                         ("restoring", restoring_at, ready_at), ("after", ready_at, float("inf"))):
        phase = [s for s in sessions if lo <= s.sent < hi and s.outcome.status.value == "ISSUED"]
        by_centre = Counter(s.outcome.centre for s in phase if s.vendor == "seven-eleven")
        print(f"  {name:9} {_percentiles([s.outcome.session_seconds for s in phase])}; "
              f"East kiosks answered by {dict(by_centre)}")
    slow = [s for s in sessions if s.outcome.session_seconds > 10]
    twice = {r: len(v) for r, v in recorder.answers.items() if len(v) > 1}
    copies = sum(n - 1 for n in recorder.copies.values())
    ids = [c for s in sessions for c in s.outcome.certificate_ids]
    print(f"longer than 10 s: {len(slow)}; unanswered: {len(sessions) - outcomes.get('ISSUED', 0)}; "
          f"answered twice (different answers): {len(twice)}; identical copies of an answer: {copies}; "
          f"certificates {len(ids)} (distinct {len(set(ids))})")
    print(f"worker counters: {counters}")


if __name__ == "__main__":
    main()
