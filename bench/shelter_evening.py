"""An evening after a large earthquake: evacuees checking in at shelter terminals, throughput and the latency from a
check-in to the live view (and to bcl.shelter.stays).

    .venv/bin/python bench/shelter_evening.py [--evacuees 20000] [--shelters 60] [--minutes 30] [--compression 10]
        [--population 40000] [--cards 20] [--staff-share 0.1]

Set-up (untimed): a fresh embedded cluster (bcl cluster's process, 3 brokers); 田辺市's synthetic register of
--population residents as the backup and an earthquake declared from it (bench.disaster_world: its ledger in the
real disaster store, SQLite synchronous=FULL); the shipped open data imported, --shelters of 田辺市's designated
shelters (指定避難所, by id) opened, each with a capacity entered and its own terminal (kiosk_sim.shelter_terminal:
its SQLite queue, WAL, synchronous=FULL); `bcl disaster relay` running (its own process) and a reader of
bcl.shelter.stays.

The evening: --evacuees distinct people of the ledger arrive over --minutes, played --compression times faster
(30 minutes in 3 at the default, the same burst shape). Bursty: a fifth of the arrivals spread over the whole
period, the rest in three surges (at 10 %, 35 % and 65 % of it, the first the largest: the evacuation order, an
aftershock, nightfall), each Gaussian a few minutes wide; the peak rate is printed. Shelters are not equally busy
(weights 1/(rank+5)). Each arrival is a check-in kept on its shelter's terminal at the moment it is due, its time
on the evening's clock; the evening is placed so that it ends at the real time it is played to the end, so no
event is in the future of the staff page's clock.

Tokens: the card through pcscd/vpcd takes about a second a person (PIN, a signature), so --cards people, spread
over the evening, check in with a virtual My Number card of the test PKI bearing their ledger serial (read by
kiosk_sim.shelter_terminal.read_card through the real pcscd and vpcd; the intake checks the certificate); the
bulk with the printed registration QR (domain.shelter_pass) and --staff-share of it as staff entries (name in
kana and birth date; only people whose reading and birth date are unique in the ledger, as staff would be told to
use the QR otherwise).

Processes, as in a deployment (they share the 2 cores, not a Python interpreter): the terminals (one process
playing the 60 terminals' arrivals and reading the cards), the intake (this process: one loop hands every
terminal's pending events to the one intake — platform.shelter_intake: the card checks, then Shelters.receive: one
transaction a batch, the stays recomputed, the outbox rows — and keeps the receipts on the terminal, terminal after
terminal, as fast as it can; a terminal's batch is what arrived while the others were being served), the relay,
the two views' readers and the topic's reader. perf_counter is the system's monotonic clock, the same in all.

Every dwelling of the municipality is registered damaged (one area registration, sinks.damage_assessment), so
every resident is looked for and each check-in takes one person off the unaccounted-for count.

Figures: check-ins applied per second (over the evening, and the busiest 10 s); latency from the moment a
check-in is kept on its terminal to (a) the intake's receipt kept on the terminal, (b) the live view: the
headcount of the shelter as the staff page reads it (Shelters.occupancy of the municipality now, polled by
another connection every --poll-ms), the clock stops at the first read that counts it, (c) the unaccounted-for
count (sinks.unaccounted.Unaccounted.counts, what the unaccounted-for page shows first, polled the same way by a
third connection: the first read down by n after the n-th check-in the intake committed), and (d) the ShelterStay
on bcl.shelter.stays read by a consumer (through the relay). p50, p99, max; and the cost of one read of each
view. The machine is named with its core count and CPU model (the cluster, the relay and this driver share them).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's tests.sinks.history_factory

import shapely
from cryptography.hazmat.primitives import serialization

from bench.disaster_world import declared
from bench.machine import machine
from bench.percentiles import percentile
from certgen.user_certificates import CertificateKind
from domain.damage_levels import DamageLevel
from domain.shelter_pass import ShelterPass, pass_text
from domain.shelter_stays import ReceiptStatus, StayAction, TokenKind, kana_key
from domain.shelters import Capacity, ShelterKind
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.shelter_terminal import TerminalQueue, read_card
from kiosk_sim.vpcd import VPCD_PORT, VpcdCardServer
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.platform import Platform
from streams.settings import load_settings

BCL = Path(sys.executable).parent / "bcl"
TANABE = "302066"
PIN = "1234"
SURGES = ((0.10, 0.40, 0.035), (0.35, 0.25, 0.03), (0.65, 0.15, 0.04))  # (centre, share, width) of the period
BACKGROUND = 0.20


@dataclass
class Arrival:
    due: float  # seconds of the played evening (real seconds from its start)
    shelter: int
    kind: TokenKind
    token: dict[str, str]
    card: tuple[bytes, bytes] | None = None  # a card's key (PEM) and certificate (DER) of the test PKI


def figures(name: str, seconds: list[float]) -> str:
    ms = [x * 1000 for x in seconds]
    return (f"{name} ({len(ms):,}): p50 {statistics.median(ms):,.0f} ms, p99 {percentile(ms, 99):,.0f} ms, "
            f"max {max(ms):,.0f} ms")


def arrival_times(count: int, period: float, rng: random.Random) -> list[float]:
    """`count` instants in [0, period): a background spread evenly and three Gaussian surges."""
    surge_total = sum(share for _, share, _ in SURGES)
    times = []
    for _ in range(count):
        pick = rng.random()
        if pick < BACKGROUND:
            times.append(rng.uniform(0, period))
            continue
        pick = (pick - BACKGROUND) / (1 - BACKGROUND) * surge_total
        for centre, share, width in SURGES:
            if pick < share or (centre, share, width) == SURGES[-1]:
                times.append(min(period * 0.999, max(0.0, rng.gauss(centre * period, width * period))))
                break
            pick -= share
    return sorted(times)


def _platform(data_dir: str, bootstrap: str) -> Platform:
    return Platform(load_settings({"data_dir": Path(data_dir), "bootstrap_servers": bootstrap}, environ={}))


def poll_occupancy(data_dir: str, bootstrap: str, disaster_id: str, poll_ms: float, stop: Event, out: str) -> None:
    """The staff page's data (the municipality's occupancy now) read again and again: (t, cost, headcounts)."""
    view = _platform(data_dir, bootstrap).shelters
    reads = []
    while not stop.is_set():
        started = time.perf_counter()
        rows = view.occupancy(disaster_id, dt.datetime.now(dt.UTC), TANABE)
        read = time.perf_counter()
        reads.append((read, read - started, {r.entry.shelter.shelter_id: r.occupancy.headcount for r in rows}))
        time.sleep(max(0.0, poll_ms / 1000 - (read - started)))
    Path(out).write_text(json.dumps(reads))


def poll_count(data_dir: str, bootstrap: str, disaster_id: str, poll_ms: float, stop: Event, out: str) -> None:
    """The unaccounted-for page's first figure (the count) read again and again: (t, cost, count)."""
    view = _platform(data_dir, bootstrap).unaccounted
    reads = []
    while not stop.is_set():
        started = time.perf_counter()
        count = view.counts(disaster_id, TANABE).unaccounted
        read = time.perf_counter()
        reads.append((read, read - started, count))
        time.sleep(max(0.0, poll_ms / 1000 - (read - started)))
    Path(out).write_text(json.dumps(reads))


def read_stays(bootstrap: str, stop: Event, out: str) -> None:
    """When each ShelterStay is read on bcl.shelter.stays: stay event id → t."""
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.SHELTER_STAYS])
    consumer = kafka.make_consumer(bootstrap, "bench-shelter-evening")
    consumer.subscribe([topics.SHELTER_STAYS])
    seen: dict[str, float] = {}
    while not stop.is_set():
        msg = consumer.poll(0.05)
        if msg is None or msg.error():
            continue
        at = time.perf_counter()
        seen.setdefault(serde.decode(msg.value())["stay_event_id"], at)
    consumer.close()
    Path(out).write_text(json.dumps(seen))


def play(terminals_dir: str, count: int, arrivals: list[Arrival], minutes: float, compression: float,
         out: str) -> None:
    """The terminals: each arrival kept on its shelter's queue when due, its time on the evening's clock (which
    ends at the real time the play ends); a card read through pcscd/vpcd first, in a thread (one reader)."""
    queues = [TerminalQueue(Path(terminals_dir) / f"T{n:02d}.sqlite3") for n in range(count)]
    kept: list[tuple[int, int, float, str]] = []  # (shelter, sequence, t, event id)
    lock, reader = threading.Lock(), threading.Lock()
    card_reads: list[float] = []
    start = time.perf_counter()
    evening = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)

    def keep(queue: TerminalQueue, shelter: int, kind: TokenKind, token: dict[str, str]) -> None:
        at = evening + dt.timedelta(seconds=(time.perf_counter() - start) * compression)
        event = queue.record(StayAction.CHECK_IN, kind, token, min(at, dt.datetime.now(dt.UTC)))
        with lock:
            kept.append((shelter, event.event.terminal_sequence, time.perf_counter(), event.event.event_id))

    def card_in(arrival: Arrival) -> None:
        assert arrival.card is not None
        key = serialization.load_pem_private_key(arrival.card[0], None)
        card = JpkiCard(auth=CardKey(key, arrival.card[1]), auth_pin=PIN)  # type: ignore[arg-type]
        queue = TerminalQueue(Path(terminals_dir) / f"T{arrival.shelter:02d}.sqlite3")  # the thread's connection
        with reader:
            server = VpcdCardServer(card, port=VPCD_PORT)
            thread = server.start()
            try:
                began = time.perf_counter()
                token = read_card(PIN, None)
                card_reads.append(time.perf_counter() - began)
            finally:
                server.close()
                thread.join(timeout=5)
        keep(queue, arrival.shelter, TokenKind.CARD, token)
        queue.close()

    lag, threads = [], []
    for arrival in arrivals:
        wait = arrival.due - (time.perf_counter() - start)
        if wait > 0:
            time.sleep(wait)
        lag.append(max(0.0, -wait))
        if arrival.kind is TokenKind.CARD:
            threads.append(threading.Thread(target=card_in, args=(arrival,)))
            threads[-1].start()
        else:
            keep(queues[arrival.shelter], arrival.shelter, arrival.kind, arrival.token)
    for thread in threads:
        thread.join()
    Path(out).write_text(json.dumps({"kept": kept, "lag": lag, "card_reads": card_reads,
                                     "played": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evacuees", type=int, default=20_000)
    parser.add_argument("--shelters", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--compression", type=float, default=10)
    parser.add_argument("--population", type=int, default=40_000)
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--staff-share", type=float, default=0.1)
    parser.add_argument("--poll-ms", type=float, default=50)
    args = parser.parse_args()
    print(machine(), flush=True)
    rng = random.Random(11)
    root = Path(tempfile.mkdtemp(prefix="bench-shelter-"))
    with ClusterHandle.start(brokers=3, data_dir=root / "cluster") as cluster:
        settings = load_settings({"data_dir": root / "var", "bootstrap_servers": cluster.bootstrap_servers},
                                 environ={})
        platform = Platform(settings)
        disaster, _ = declared(platform, TANABE, args.population)
        d = disaster.disaster_id
        now = dt.datetime.now(dt.UTC)
        platform.pki.initialise(now)
        shelters = platform.shelters
        with resources.as_file(resources.files("domain").joinpath("data", "shelters.csv")) as shipped:
            shelters.import_csv(shipped, None, now)
        chosen = [e.shelter for e in shelters.shelters(TANABE)
                  if e.shelter.kind is ShelterKind.DESIGNATED_SHELTER][:args.shelters]
        if len(chosen) < args.shelters:
            raise SystemExit(f"{TANABE} has {len(chosen)} designated shelters, fewer than --shelters")
        opened_at = now - dt.timedelta(minutes=args.minutes, hours=1)
        capacity = max(50, round(args.evacuees / len(chosen) * 1.5, -1))
        for shelter in chosen:
            shelters.set_capacity(shelter.shelter_id, Capacity(int(capacity * 1.2), int(capacity)), "bench", now)
            shelters.open(d, shelter.shelter_id, "bench", now, opened_at)
        # Every dwelling of the municipality damaged (an area registration over all of it): every resident is looked
        # for, and each check-in takes one person off the unaccounted-for count.
        platform.damage_assessment.apply_area(d, TANABE, shapely.box(122.0, 20.0, 154.0, 46.0), DamageLevel.ZENKAI,
                                              staff="bench", now=now)
        initial = platform.unaccounted.counts(d, TANABE).unaccounted
        people = platform.disaster_store.connection.execute(
            "SELECT resident_code, family_name_kana || given_name_kana, birth_date, jpki_serials FROM "
            "ledger_residents WHERE disaster_id=? AND current_status='CURRENT' ORDER BY resident_code", (d,)).fetchall()
        if len(people) < args.evacuees:
            raise SystemExit(f"the ledger has {len(people):,} current residents, fewer than --evacuees")
        readings = Counter((kana_key(kana), birth) for _, kana, birth, _ in people)
        evacuees = rng.sample(people, args.evacuees)
        with_cards = [p for p in evacuees if p[3]][:args.cards]
        card_codes = {p[0] for p in with_cards}
        print(f"ledger of {TANABE}: {len(people):,} current residents, {len(chosen)} shelters opened (capacity "
              f"{capacity:.0f} at night each), {args.evacuees:,} evacuees, {len(with_cards)} of them with a card; "
              f"every dwelling damaged: {initial:,} unaccounted for", flush=True)

        period = args.minutes * 60 / args.compression  # real seconds the evening is played in
        times = arrival_times(args.evacuees, period, rng)
        weights = [1 / (rank + 5) for rank in range(len(chosen))]
        card_slots = set(rng.sample(range(len(times)), len(with_cards)))
        others = iter([p for p in evacuees if p[0] not in card_codes])
        cards = iter(with_cards)
        arrivals: list[Arrival] = []
        staff = qr = 0
        for i, due in enumerate(times):
            shelter = rng.choices(range(len(chosen)), weights)[0]
            if i in card_slots:
                serial = next(cards)[3].split(",")[0]
                issued = platform.pki.issue_card(serial, CertificateKind.CARD, now)
                key = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
                arrivals.append(Arrival(due, shelter, TokenKind.CARD, {},
                                        (key, issued.certificate.public_bytes(serialization.Encoding.DER))))
                continue
            code, kana, birth, _ = next(others)
            if rng.random() < args.staff_share and readings[kana_key(kana), birth] == 1:
                staff += 1
                arrivals.append(Arrival(due, shelter, TokenKind.STAFF, {"kana": kana, "birth_date": birth,
                                                                        "staff": "避難所職員"}))
            else:
                qr += 1
                arrivals.append(Arrival(due, shelter, TokenKind.QR, {
                    "text": pass_text(ShelterPass(d, TANABE, code), platform.shelter_pass_key)}))
        peak = max(Counter(int(a.due * args.compression // 60) for a in arrivals).values())  # busiest minute
        print(f"the evening: {args.minutes:g} minutes played in {period:.0f} s (×{args.compression:g}); "
              f"tokens: {qr:,} QR, {staff:,} staff entries, {len(with_cards)} cards; arrivals: busiest minute "
              f"{peak:,} ({peak / 60 * args.compression:,.0f}/s played), "
              f"average {args.evacuees / args.minutes:,.0f}/min", flush=True)

        terminals_dir = root / "terminals"
        for n, shelter in enumerate(chosen):
            TerminalQueue.create(terminals_dir / f"T{n:02d}.sqlite3", d, shelter.shelter_id, f"T{n:02d}", now).close()
        env = os.environ | {"BCL_DATA_DIR": str(root / "var"), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
                            "BCL_LOG_LEVEL": "warning"}
        relay = subprocess.Popen([str(BCL), "disaster", "relay"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=(root / "relay.log").open("a"))
        if with_cards:
            from infra.pcscd import PcscDaemon

            PcscDaemon.ensure_running()
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        data_dir, bootstrap = str(root / "var"), cluster.bootstrap_servers
        out = {name: str(root / f"{name}.json") for name in ("occupancy", "count", "stays", "play")}
        watchers = [spawn.Process(target=poll_occupancy, args=(data_dir, bootstrap, d, args.poll_ms, stop,
                                                               out["occupancy"])),
                    spawn.Process(target=poll_count, args=(data_dir, bootstrap, d, args.poll_ms, stop, out["count"])),
                    spawn.Process(target=read_stays, args=(bootstrap, stop, out["stays"]))]
        for watcher in watchers:
            watcher.start()
        time.sleep(8)  # the readers started, the consumer joined, the relay running
        player = spawn.Process(target=play, args=(str(terminals_dir), len(chosen), arrivals, args.minutes,
                                                  args.compression, out["play"]))
        intake = platform.shelter_intake()
        queues = [TerminalQueue(terminals_dir / f"T{n:02d}.sqlite3") for n in range(len(chosen))]
        receipts: dict[str, tuple[float, str]] = {}
        player.start()
        while True:  # the intake's loop
            idle = True
            for queue in queues:
                batch = queue.pending()
                if not batch:
                    continue
                idle = False
                answers = intake.receive(batch)
                queue.answer(answers, dt.datetime.now(dt.UTC))
                answered = time.perf_counter()
                for receipt in answers:
                    receipts[receipt.event_id] = (answered, receipt.status.value)
            if idle:
                if not player.is_alive():
                    break
                time.sleep(0.005)
        player.join()
        applied = [i for i, (_, s) in receipts.items() if s == ReceiptStatus.APPLIED.value]
        outbox_drained = time.monotonic() + 300
        while platform.disaster_store.outbox_counts()["unpublished"] and time.monotonic() < outbox_drained:
            time.sleep(0.2)
        time.sleep(3)  # the last events read, the last reads of the views
        stop.set()
        for watcher in watchers:
            watcher.join(timeout=120)
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=60)
        results: dict[str, Any] = {name: json.loads(Path(path).read_text()) for name, path in out.items()}

        played = results["play"]
        print(f"played in {played['played']:.1f} s (arrivals kept late by p99 "
              f"{percentile(played['lag'], 99) * 1000:.0f} ms): {dict(Counter(s for _, s in receipts.values()))}")
        start = min(t for _, _, t, _ in played["kept"])
        answered_at = sorted(receipts[i][0] for i in applied)
        busiest = max(bisect.bisect_right(answered_at, t + 10) - i for i, t in enumerate(answered_at))
        print(f"throughput: {len(applied):,} check-ins applied in {answered_at[-1] - start:.1f} s = "
              f"{len(applied) / (answered_at[-1] - start):,.0f}/s; busiest 10 s: {busiest / 10:,.0f}/s")
        kept_at = {event_id: t for _, _, t, event_id in played["kept"]}
        reads = results["occupancy"]
        to_receipt, to_view = [], []
        for n, shelter in enumerate(chosen):
            read_times = [t for t, _, _ in reads]
            heads = [counts.get(shelter.shelter_id, 0) for _, _, counts in reads]
            rank = 0
            for _, _, t, event_id in sorted(k for k in played["kept"] if k[0] == n):
                if receipts.get(event_id, (0, ""))[1] != ReceiptStatus.APPLIED.value:
                    continue
                rank += 1
                to_receipt.append(receipts[event_id][0] - t)
                # The first read of the live view whose headcount counts this check-in: a shelter's events are taken
                # in their order on its terminal and there are only check-ins, so its headcount only grows and
                # counts its first `rank` applied check-ins when it reaches `rank`.
                k = bisect.bisect_left(heads, rank)
                if k < len(heads):
                    to_view.append(read_times[k] - t)
        # The count: the applied check-ins in the order the intake committed them (batch after batch); the count read
        # after the n-th is down by n.
        committed = sorted((receipts[i][0], i) for i in applied)
        count_times = [t for t, _, _ in results["count"]]
        accounted = [initial - c for _, _, c in results["count"]]
        to_count = []
        for n, (_, event_id) in enumerate(committed, start=1):
            k = bisect.bisect_left(accounted, n)
            if k < len(accounted):
                to_count.append(count_times[k] - kept_at[event_id])
        to_topic = [results["stays"][i] - kept_at[i] for i in applied if i in results["stays"]]
        print("latency from the check-in kept on the terminal:")
        print("  " + figures("(a) to the intake's receipt on the terminal", to_receipt))
        print("  " + figures(f"(b) to the live view (occupancy read every {args.poll_ms:g} ms)", to_view))
        costs = [c for _, c, _ in reads]
        print(f"      a read of the live view: p50 {statistics.median(costs) * 1000:.1f} ms, "
              f"p99 {percentile(costs, 99) * 1000:.1f} ms")
        print("  " + figures(f"(c) to the unaccounted-for count (read every {args.poll_ms:g} ms or as fast as it "
                             "answers)", to_count))
        costs = [c for _, c, _ in results["count"]]
        print(f"      a read of the count: p50 {statistics.median(costs) * 1000:.0f} ms, "
              f"p99 {percentile(costs, 99) * 1000:.0f} ms; the count at the end {results['count'][-1][2]:,} "
              f"(of {initial:,})")
        print("  " + figures("(d) to bcl.shelter.stays (relay, consumer)", to_topic))
        if played["card_reads"]:
            print("  " + figures("card read (pcscd/vpcd: certificate, PIN, signature), before the check-in",
                                 played["card_reads"]))
        if not to_view:
            raise SystemExit("the live view never counted a check-in")


if __name__ == "__main__":
    main()
