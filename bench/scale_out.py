"""Scale-out ingest: a national mix through `bcl backup materialise --processes N`, N = 1, 2, 3, in one run.

    .venv/bin/python bench/scale_out.py [--events 150000] [--municipalities 60]

The mix: municipalities of the shipped reference data (docs/domain.md) chosen across the whole range of sizes
(横浜市, 3.7 million, always among them; the others spread by population rank), each register scaled by one
factor so that the full loads add up to --events. Built, encoded and signed first (untimed), as the adapters
would send them. For each N a fresh embedded cluster (bcl cluster's process, 3 brokers) gets the same signed
events on bcl.register.diffs (64 partitions, untimed); then the real command is started with --processes N and
timed from its start until the snapshot store holds every event (so the figure includes starting the
processes, joining the group and its rebalances); then it is stopped with SIGTERM. Prints events/s, the ratio
to N = 1, and the projected time of a national full load
(119 million residents) at each rate. The machine is named with its core count and CPU model: on 2 cores the
materialiser shares them with the broker, so N = 3 cannot scale past 2."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from domain.japan_time import JST
from domain.municipalities import all_municipalities
from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.snapshot_store import ParquetSnapshotStore
from streams.adapter import sign_messages
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings

START = dt.datetime(2026, 11, 9, tzinfo=JST)
NATIONAL = 119_000_000  # residents of the participating municipalities (issue 12)
CITY = "141003"  # 横浜市


def national_mix(municipalities: int, events: int) -> list[tuple[str, int]]:
    """(code, scaled population): 横浜市 and municipalities spread over the ranks by population."""
    ranked = sorted((m for m in all_municipalities() if m.population), key=lambda m: -(m.population or 0))
    step = max(1, len(ranked) // (municipalities - 1))
    chosen = {m.code: m for m in [ranked[0], *ranked[step::step]][:municipalities]}
    chosen.setdefault(CITY, next(m for m in ranked if m.code == CITY))
    total = sum(m.population or 0 for m in chosen.values())
    return [(code, max(20, round((m.population or 0) * events / total))) for code, m in chosen.items()]


def build(mix: list[tuple[str, int]], platform: Platform) -> list[tuple[bytes | None, bytes, list | None]]:
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.REGISTER_DIFFS])
    reference, seed, font = load_reference_data(), platform.settings.seed, platform.settings.mincho_font
    messages = []
    for code, population in mix:
        sim = RegisterSimulator(reference, code, population=population, seed=seed, start=START, font_path=font)
        messages += [(code, message_key(code, e["resident_code"]), serde.encode(e)) for e in sim.full_load()]
    return list(sign_messages(messages, platform.register_signer))


def produce(bootstrap: str, signed: list[tuple[bytes | None, bytes, list | None]]) -> None:
    producer = kafka.make_producer(bootstrap, bulk=True)
    for i, (key, value, headers) in enumerate(signed):
        kafka.produce(producer, topics.REGISTER_DIFFS, value, key, headers=headers)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0


def history_rows(store: ParquetSnapshotStore) -> int:
    if not store.has_history():
        return 0
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*) FROM {store.history_relation(con)}").fetchone()
    return int(row[0]) if row else 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(processes: int, data_dir: Path, signed: list, total: int) -> tuple[float, dict[str, int], float]:
    shutil.rmtree(data_dir / "snapshots", ignore_errors=True)
    with ClusterHandle.start(brokers=3, data_dir=data_dir / f"cluster-{processes}") as cluster:
        produce(cluster.bootstrap_servers, signed)
        env = {**os.environ, "BCL_DATA_DIR": str(data_dir), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
               "BCL_LOG_FORMAT": "json"}
        store = ParquetSnapshotStore(data_dir / "snapshots")
        cpu_before = children_cpu()
        began = time.monotonic()
        command = subprocess.Popen([sys.executable, "-m", "streams.cli", "backup", "materialise",
                                    "--processes", str(processes)],
                                   stdout=subprocess.PIPE, stderr=(data_dir / f"materialise-{processes}.log").open("w"),
                                   text=True, env=env)
        deadline = began + 3600
        while history_rows(store) < total and time.monotonic() < deadline and command.poll() is None:
            time.sleep(0.25)
        seconds = time.monotonic() - began
        command.send_signal(signal.SIGTERM)
        out, _ = command.communicate(timeout=120)
        counters = json.loads(out.strip().splitlines()[-1])
        # The command and the members it waited for (start-up included: about 2 CPU seconds a process).
        cpu = children_cpu() - cpu_before
    return seconds, counters, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--municipalities", type=int, default=60)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    print(f"machine: {os.cpu_count()} cores ({model})")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(os.environ.get("BENCH_KEEP", tmp))
        platform = Platform(load_settings({"data_dir": str(data_dir)}))
        mix = national_mix(args.municipalities, args.events)
        t0 = time.perf_counter()
        signed = build(mix, platform)
        total = len(signed)
        city = next(p for c, p in mix if c == CITY)
        print(f"{len(mix)} municipalities, {total:,} full-load events (横浜市 {city:,}; smallest "
              f"{min(p for _, p in mix):,}), built, encoded and signed in {time.perf_counter() - t0:.0f} s")
        results = {}
        for n in args.processes:
            seconds, counters, cpu = run(n, data_dir, signed, total)
            results[n] = (seconds, cpu)
            print(f"  {n} process(es): {seconds:.1f} s, applied {counters.get('applied', 0):,}, duplicates "
                  f"{counters.get('duplicates', 0):,}, dead letters {counters.get('dead_lettered', 0):,}", flush=True)

    base = total / results[args.processes[0]][0]
    load = os.getloadavg()
    print(f"\nload average at the end (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'processes':>10}{'seconds':>10}{'events/s':>11}{'vs 1':>7}{'CPU µs/event':>14}"
          f"{'national full load (119 M)':>30}")
    for n, (seconds, cpu) in results.items():
        rate = total / seconds
        projected = dt.timedelta(seconds=round(NATIONAL / rate))
        print(f"{n:>10}{seconds:>10.1f}{rate:>11,.0f}{rate / base:>7.2f}{cpu / total * 1e6:>14.0f}{projected!s:>30}")


if __name__ == "__main__":
    main()
