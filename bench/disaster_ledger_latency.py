"""The disaster-ledger processor: latency from a register change to the ledger row changed, and its events/s.

    .venv/bin/python bench/disaster_ledger_latency.py [--population 5000] [--changes 300] [--events 20000]

Set-up (untimed): a fresh embedded cluster (bcl cluster's process, 3 brokers); 女川町's synthetic register of
--population residents as the backup (snapshot store); an earthquake declared a day after the full load, so that
its ledger is built from the backup. Then the real `bcl disaster ledger-processor` is started (a Faust app, its own
process), writing the real ledger store (sinks.disaster_ledger, SQLite synchronous=FULL).

Latency: --changes deaths, one at a time (a random pause of 0-50 ms between them, so that they do not line up with
the agent's batches), each produced to bcl.residents as the materialiser publishes an accepted change (the
materialiser is not in the loop: the figure is bcl.residents → ledger row) and awaited with the producer's
acknowledgement; the clock stops when a reader of the store file sees the row's DIED flag (polled every 0.5 ms).
p50, p99 and max.

events/s of the agent alone: the processor is stopped (SIGTERM), --events register states are produced (household
changes of every resident, round after round, each changing its row), the processor is started again and timed
from the first changed row to the last (the start and the group join are reported apart).

End to end: --changes more deaths, each a signed ResidentChange (the next sequence after the full load, signed as
the adapter signs) produced to the adapter's topic bcl.register.diffs, with `bcl backup materialise` and the
processor running: adapter topic → materialiser (validated, verified, history written, bcl.residents) → ledger row.
The machine is named with its core count and CPU model (the broker, the processor and this driver share them)."""

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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's tests.sinks.history_factory

from bench.disaster_world import ONAGAWA, START, declared_onagawa
from bench.machine import machine
from bench.percentiles import percentile
from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from streams.adapter import sign_messages
from streams.platform import Platform
from streams.settings import load_settings
from tests.factories import make_change

BCL = Path(sys.executable).parent / "bcl"


def start_processor(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen([str(BCL), "disaster", "ledger-processor"], env=env, stdout=subprocess.PIPE,
                                stderr=err, text=True)


def stop_processor(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"the processor exited with {proc.returncode}")
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    with ClusterHandle.start(brokers=3, data_dir=root / "cluster") as cluster:
        settings = load_settings({"data_dir": root / "var", "bootstrap_servers": cluster.bootstrap_servers},
                                 environ={})
        platform = Platform(settings)
        disaster, load = declared_onagawa(platform, args.population)
        platform.disaster_store.close()
        residents = [e["after"] for e in load]
        print(f"ledger of {ONAGAWA}: {len(residents):,} residents, disaster {disaster.disaster_id}")
        serde = AvroSerde(platform.registry, CONTRACTS[topics.RESIDENTS])
        producer = kafka.make_producer(cluster.bootstrap_servers)
        env = os.environ | {"BCL_DATA_DIR": str(root / "var"), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
                            "BCL_LOG_LEVEL": "warning", "BCL_LOG_FORMAT": "json"}
        reader = sqlite3.connect(f"file:{settings.disaster_store_file}?mode=ro", uri=True, isolation_level=None)
        query = ("SELECT flags, current_household_number FROM ledger_residents WHERE disaster_id = ? AND "
                 "municipality_code = ? AND resident_code = ?")

        def row(resident_code: str) -> tuple[str, str]:
            found = reader.execute(query, (disaster.disaster_id, ONAGAWA, resident_code)).fetchone()
            return (found[0], found[1]) if found else ("", "")

        def publish(record: dict[str, Any]) -> None:
            kafka.produce(producer, topics.RESIDENTS, serde.encode(record),
                          message_key(record["municipality_code"], record["resident_code"]))

        died_on = (START + dt.timedelta(days=2)).date()

        def death(record: dict[str, Any]) -> dict[str, Any]:
            return {**record, "status": "DELETED", "deletion_reason": "DEATH", "deleted_on": died_on,
                    "notified_on": died_on}

        proc = start_processor(env, root / "processor.log")
        began = time.monotonic()
        publish(death(residents[0]))  # warm-up: the group joined and the first batch written
        producer.flush(30)
        while "DIED" not in row(residents[0]["resident_code"])[0]:
            time.sleep(0.01)
        print(f"processor started and first change applied in {time.monotonic() - began:.1f} s")
        rng = random.Random(7)
        latencies: list[float] = []
        for record in residents[1:args.changes + 1]:
            time.sleep(rng.uniform(0, 0.05))
            sent = time.perf_counter()
            publish(death(record))
            producer.flush(30)
            while "DIED" not in row(record["resident_code"])[0]:
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - sent)
        ms = [x * 1000 for x in latencies]
        print(f"latency bcl.residents → ledger row ({len(ms)} changes): p50 {statistics.median(ms):.1f} ms, "
              f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")
        print(f"  totals: {stop_processor(proc)}")

        living = residents[args.changes + 1:]
        rounds = max(1, -(-args.events // len(living)))
        produced = 0
        for r in range(rounds):
            for record in living:
                if produced == args.events:
                    break
                publish({**record, "household_number": f"B{r:02d}{record['household_number']}"[:20]})
                produced += 1
        producer.flush(120)
        last = {rec["resident_code"]: f"B{r:02d}{rec['household_number']}"[:20]
                for r in range(rounds) for i, rec in enumerate(living) if r * len(living) + i < produced}
        first_code = living[0]["resident_code"]
        households = ("SELECT resident_code, current_household_number FROM ledger_residents WHERE disaster_id = ? "
                      "AND municipality_code = ?")
        began = time.monotonic()
        proc = start_processor(env, root / "processor.log")
        while not row(first_code)[1].startswith("B"):
            time.sleep(0.002)
        first_at = time.monotonic()
        while not all(last[code] == household for code, household in reader.execute(
                households, (disaster.disaster_id, ONAGAWA)) if code in last) or len(last) == 0:
            time.sleep(0.05)
        done_at = time.monotonic()
        totals = stop_processor(proc)
        print(f"agent alone: {produced:,} register states in {done_at - first_at:.2f} s = "
              f"{produced / (done_at - first_at):,.0f} events/s (start and group join before it: "
              f"{first_at - began:.1f} s)")
        print(f"  totals: {totals}")

        # End to end: --changes deaths as ResidentChange events after the full load, signed as the adapter signs them,
        # one at a time to bcl.register.diffs; the materialiser (`bcl backup materialise`) and the processor running.
        diffs = AvroSerde(platform.registry, CONTRACTS[topics.REGISTER_DIFFS])
        materialiser = subprocess.Popen([str(BCL), "backup", "materialise"], env=env, stdout=subprocess.PIPE,
                                        stderr=(root / "materialiser.log").open("a"), text=True)
        proc = start_processor(env, root / "processor.log")
        time.sleep(15)  # both started and joined (their first polls)
        end_to_end: list[float] = []
        sequence = max(e["sequence"] for e in load)
        for i, record in enumerate(living[:args.changes]):
            sequence += 1
            when = START + dt.timedelta(days=2, seconds=i)
            change = make_change(sequence, death(record), municipality_code=ONAGAWA, change_type="DEATH",
                                 event_time=when)
            [(key, value, headers)] = sign_messages(
                [(ONAGAWA, message_key(ONAGAWA, record["resident_code"]), diffs.encode(change))],
                platform.register_signer)
            time.sleep(rng.uniform(0, 0.05))
            sent = time.perf_counter()
            kafka.produce(producer, topics.REGISTER_DIFFS, value, key, headers=headers)
            producer.flush(30)
            deadline = time.monotonic() + 30
            while "DIED" not in row(record["resident_code"])[0]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"change {sequence} did not reach the ledger in 30 s (see {root})")
                time.sleep(0.0005)
            end_to_end.append(time.perf_counter() - sent)
        materialiser.send_signal(signal.SIGTERM)
        print(f"  materialiser: {materialiser.communicate(timeout=60)[0].strip()}")
        totals = stop_processor(proc)
        if end_to_end:
            ms = [x * 1000 for x in end_to_end]
            print(f"end to end bcl.register.diffs → materialiser → bcl.residents → ledger row ({len(ms)} deaths): "
                  f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms")
        print(f"  totals: {totals}")


if __name__ == "__main__":
    main()
