"""The evacuation-roster processor: its events/s on a municipality's whole register and welfare feed, and the latency
from a welfare event to the person listed.

    .venv/bin/python bench/evacuation_roster_throughput.py [--population 20000] [--changes 200]

Set-up (untimed): a fresh embedded cluster (bcl cluster's process, 3 brokers); 女川町's synthetic register of
--population residents (streams.register.simulator, the full load's records) produced to bcl.residents as the
materialiser publishes them, and the synthetic welfare systems' full load to bcl.welfare.status, signed with the
municipality's key as `bcl adapter welfare` sends it.

events/s: the real `bcl roster processor` (a Faust app, its own process, writing the roster's tables of the disaster
store, SQLite synchronous=FULL) is started on that backlog and timed from the first person evaluated to the last
(everyone of the register evaluated and every welfare event applied; the start and the group join are reported
apart). This is what `make demo` asks of it: a register loaded in full, then read by the processor.

Latency: --changes residents not listed are certified 要介護4 at home, one at a time (a random pause of 0-50 ms between
them, so that they do not line up with the agent's batches), each a signed WelfareStatus awaited with the producer's
acknowledgement; the clock stops when a reader of the store file sees the person listed (polled every 0.5 ms).
p50, p99 and max. The machine is named with its core count and CPU model (the broker, the processor and this driver
share them)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's bench.* when run as a script

from bench.disaster_world import ONAGAWA, START
from bench.machine import machine
from bench.percentiles import percentile
from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from streams.adapter import publish_welfare, sign_messages
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings

BCL = Path(sys.executable).parent / "bcl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=20000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="bench-roster-"))
    with ClusterHandle.start(brokers=3, data_dir=root / "cluster") as cluster:
        settings = load_settings({"data_dir": root / "var", "bootstrap_servers": cluster.bootstrap_servers},
                                 environ={})
        platform = Platform(settings)
        sim = RegisterSimulator(load_reference_data(), ONAGAWA, population=args.population, seed=3, start=START,
                                font_path=settings.mincho_font)
        residents = [e["after"] for e in sim.full_load()]
        welfare = list(sim.welfare_full_load())
        serde = AvroSerde(platform.registry, CONTRACTS[topics.RESIDENTS])
        producer = kafka.make_producer(cluster.bootstrap_servers)
        for record in residents:
            kafka.produce(producer, topics.RESIDENTS, serde.encode(record),
                          message_key(record["municipality_code"], record["resident_code"]))
        producer.flush(120)
        publish_welfare(welfare, cluster.bootstrap_servers, platform.registry, platform.register_signer)
        # The roster's tables exist before the reader opens the file (the processor's store creates the same ones).
        platform.evacuation_roster.store.close()
        events = len(residents) + len(welfare)
        print(f"register of {ONAGAWA}: {len(residents):,} residents and {len(welfare):,} welfare statuses "
              f"= {events:,} events on bcl.residents and bcl.welfare.status")

        env = os.environ | {"BCL_DATA_DIR": str(root / "var"), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
                            "BCL_LOG_LEVEL": "warning", "BCL_LOG_FORMAT": "json"}
        reader = sqlite3.connect(f"file:{settings.disaster_store_file}?mode=ro", uri=True, isolation_level=None)
        evaluated = "SELECT count(*) FROM roster_people WHERE municipality_code=? AND evaluated_on IS NOT NULL"
        welfare_held = "SELECT count(*) FROM roster_welfare WHERE municipality_code=?"
        wanted_welfare = len({w["resident_code"] for w in welfare})

        def count(query: str) -> int:
            return int(reader.execute(query, (ONAGAWA,)).fetchone()[0])

        began = time.monotonic()
        with (root / "processor.log").open("a") as err:
            proc = subprocess.Popen([str(BCL), "roster", "processor"], env=env, stdout=subprocess.PIPE, stderr=err,
                                    text=True)
        while count(evaluated) == 0:
            time.sleep(0.002)
        first_at = time.monotonic()
        while count(evaluated) < len(residents) or count(welfare_held) < wanted_welfare:
            if proc.poll() is not None:
                raise SystemExit(f"the processor exited with {proc.returncode} (see {root / 'processor.log'})")
            time.sleep(0.02)
        done_at = time.monotonic()
        print(f"backlog: {events:,} events in {done_at - first_at:.2f} s = {events / (done_at - first_at):,.0f} "
              f"events/s (start and group join before it: {first_at - began:.1f} s)")

        listed = "SELECT listed_since FROM roster_people WHERE municipality_code=? AND resident_code=?"
        unlisted = [code for (code,) in reader.execute(
            "SELECT resident_code FROM roster_people WHERE municipality_code=? AND status='CURRENT' "
            "AND listed_since IS NULL ORDER BY resident_code", (ONAGAWA,))][:args.changes]
        welfare_serde = AvroSerde(platform.registry, CONTRACTS[topics.WELFARE_STATUS])
        rng = random.Random(7)
        latencies: list[float] = []
        for resident_code in unlisted:
            time.sleep(rng.uniform(0, 0.05))
            event = {"event_id": str(uuid.uuid4()), "municipality_code": ONAGAWA, "resident_code": resident_code,
                     "event_time": dt.datetime.now(dt.UTC), "care_level": "CARE_4", "physical_grade": None,
                     "intellectual_grade": None, "mental_grade": None, "intractable_disease": False,
                     "living_at_home": True}
            [(key, value, headers)] = sign_messages(
                [(ONAGAWA, message_key(ONAGAWA, resident_code), welfare_serde.encode(event))],
                platform.register_signer)
            sent = time.perf_counter()
            kafka.produce(producer, topics.WELFARE_STATUS, value, key, headers=headers)
            producer.flush(30)
            deadline = time.monotonic() + 30
            while reader.execute(listed, (ONAGAWA, resident_code)).fetchone()[0] is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"resident {resident_code} was not listed in 30 s (see {root})")
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - sent)
        ms = [x * 1000 for x in latencies]
        if ms:
            print(f"latency bcl.welfare.status → listed ({len(ms)} events): p50 {statistics.median(ms):.1f} ms, "
                  f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise SystemExit(f"the processor exited with {proc.returncode}")
        print(f"  totals: {out.strip().splitlines()[-1]}")
        del producer  # destroyed while the brokers are up (librdkafka would log their going away)


if __name__ == "__main__":
    main()
