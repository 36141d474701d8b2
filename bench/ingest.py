"""End-to-end ingest of a full load through the embedded cluster, against a raw baseline.

    .venv/bin/python bench/ingest.py [--population 1000000] [--municipality 131121] [--encryption both|on|off]
                                     [--compactor off|on|both]

Both runs start from the same pre-encoded ResidentChange payloads (the register is built and
encoded first, untimed; the pipeline's are also signed first, untimed, as the adapter signs them):
  baseline: produce the payloads + a consumer process that reads and Avro-decodes each one;
  pipeline: produce the signed payloads + the backup materialiser process (verify the signature,
            validate, sequence, apply, publish bcl.residents, write the Parquet change history,
            commit offsets).
The cost of the signatures is also measured alone, in this process: signing and verifying every
payload in runs (domain.register_signature.RUN_SIZE) and, for comparison, a sample signed one by one.
Each is timed from the first produce to the last event decoded / durably applied; the ratio
pipeline/baseline is reported, then a point-in-time restore of the municipality is timed.
With --encryption both (the default) the pipeline runs twice, on topics and data dirs of its own: with the
snapshot store encrypted (as deployed) and plain (ParquetSnapshotStore(plaintext=True), which only benches
use), and the ratios encrypted/plain of events/s, materialiser CPU per event and restore time are reported.
With --compactor on, the compactor runs beside the materialiser (as `bcl backup checkpoint --every 1`: in a
process of its own, checkpoints of the store, one pass after the other, from when the history has a part to the
pipeline's end); with both, each pipeline runs without it and then with it, and the ratio is reported.
The broker runs in its own process (bcl cluster up), as in tests and the demo. The topics get 256
partitions here because the embedded broker keeps at most 5 MiB per partition and a producer
of pre-encoded payloads outruns any consumer; the bench checks that nothing was lost."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import fastavro
import pyarrow.parquet as pq
from confluent_kafka import Message

from domain.japan_time import JST
from domain.register_signature import RUN_SIZE
from domain.register_validation import message_key
from infra import kafka
from infra.cluster_control import ClusterHandle
from infra.processor_runtime import BatchHandler, LoopOptions, Partitions, ProcessorRuntime, Source
from infra.register_signing import Headers, SignatureVerifier
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import HEADER, AvroSerde
from sinks import encrypted_parquet
from sinks.register_checkpoints import write_checkpoint
from sinks.restore import restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.adapter import sign_messages
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings

PARTITIONS = 256
START = dt.datetime(2026, 11, 9, tzinfo=JST)


def encode_full_load(code: str, population: int) -> tuple[list[tuple[bytes, bytes]], int]:
    settings = load_settings()
    sim = RegisterSimulator(load_reference_data(), code, population=population,
                            seed=settings.seed, start=START, font_path=settings.mincho_font)
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.register.diffs"])
    payloads = [(message_key(e["municipality_code"], e["resident_code"]), serde.encode(e)) for e in sim.full_load()]
    return payloads, sum(len(v) for _, v in payloads)


Signed = list[tuple[bytes | None, bytes, Headers | None]]


def produce_all(bootstrap: str, topic: str, payloads: Signed) -> None:
    producer = kafka.make_producer(bootstrap, bulk=True)
    for i, (key, value, headers) in enumerate(payloads):
        kafka.produce(producer, topic, value, key, headers=headers)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush()


class _Decode(BatchHandler):
    """Avro-decode every payload; nothing else. Stops once `expected` were read."""

    def __init__(self, expected: int) -> None:
        self.schema = fastavro.parse_schema(
            AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.register.diffs"]).contract_schema)
        self.expected = expected
        self.decoded = 0
        self.stop = threading.Event()

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        for msg in messages:
            buf = io.BytesIO(msg.value())
            buf.seek(HEADER.size)
            fastavro.schemaless_reader(buf, self.schema, None)
        self.decoded += len(messages)
        if self.decoded >= self.expected:
            self.stop.set()


def baseline_consumer(bootstrap: str, topic: str, expected: int, ready: mp.Event, out: mp.Queue) -> None:
    """Read (the processor runtime's loop, no commits) and Avro-decode every payload; nothing else."""
    handler = _Decode(expected)
    with ProcessorRuntime("bench-baseline", bootstrap, Source((topic,)), handler,
                          LoopOptions(batch_size=10_000, poll_timeout=0.1, commit=False)) as runtime:
        runtime.assign()
        ready.set()
        runtime.run(handler.stop)
        out.put((handler.decoded, time.time()))


def pipeline_materialiser(bootstrap: str, names: MaterialiserTopics, data_dir: str, snapshots: str, plaintext: bool,
                          expected: int, ready: mp.Event, out: mp.Queue) -> None:
    settings = load_settings({"data_dir": data_dir, "bootstrap_servers": bootstrap})  # its trust store: the signers'
    platform = Platform(settings, snapshot_store=ParquetSnapshotStore(Path(snapshots), plaintext=plaintext))
    materialiser = platform.materialiser(group_id="bench-pipeline", topic_names=names)
    ready.set()
    counters = materialiser.run(until_caught_up=True, idle_seconds=2.0)
    out.put((counters.applied, counters.dead_lettered, materialiser.last_applied_at))


def compactor(snapshots: str, stop: mp.Event, out: mp.Queue) -> None:
    """Checkpoints of the store, one pass after the other until `stop` (`bcl backup checkpoint --every`)."""
    store = ParquetSnapshotStore(Path(snapshots))
    written = 0
    while not stop.is_set():
        for muni in store.history_municipalities():
            written += write_checkpoint(store, muni).checkpoint is not None
        stop.wait(1.0)
    out.put(written)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signature_costs(platform: Platform, code: str, payloads: list[tuple[bytes, bytes]]) -> Signed:
    """Sign every payload in runs and verify each with a fresh verifier, timed; the same for a sample
    signed one message at a time. Returns the signed payloads."""
    messages = [(code, key, value) for key, value in payloads]
    t0 = time.perf_counter()
    signed: Signed = list(sign_messages(messages, platform.register_signer))
    sign_s = time.perf_counter() - t0
    verifier = SignatureVerifier(platform.trust_store)
    t0 = time.perf_counter()
    failed = sum(verifier.check(key, value, headers) is not None for key, value, headers in signed)
    verify_s = time.perf_counter() - t0
    sample = messages[:5000]
    t0 = time.perf_counter()
    singly = list(sign_messages(sample, platform.register_signer, run_size=1))
    sign1_s = time.perf_counter() - t0
    verifier = SignatureVerifier(platform.trust_store)
    t0 = time.perf_counter()
    failed += sum(verifier.check(key, value, headers) is not None for key, value, headers in singly)
    verify1_s = time.perf_counter() - t0
    n, header = len(signed), sum(len(v) for _, _, h in signed[:1000] for _, v in h or ()) / min(len(signed), 1000)
    print(f"signatures in runs of {RUN_SIZE}: sign {sign_s / n * 1e6:.1f} µs/event, verify {verify_s / n * 1e6:.1f} "
          f"µs/event, header {header:.0f} bytes/event")
    print(f"one signature per message ({len(sample):,} events): sign {sign1_s / len(sample) * 1e6:.1f} µs/event, "
          f"verify {verify1_s / len(sample) * 1e6:.1f} µs/event")
    if failed:
        print(f"WARNING: {failed} signatures did not verify")
    return signed


def timed(target, args, cluster: ClusterHandle, topic: str,  # type: ignore[no-untyped-def]
          payloads: Signed, compacting: str | None = None) -> tuple[float, tuple, dict[str, float]]:
    """Run the consumer side in its own process while this one produces; also the CPU seconds each
    process spent (broker, producer, consumer, and the compactor of the store `compacting` if given), to show
    where the time goes on two cores."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, ready, out))
    proc.start()
    ready.wait(60)
    compaction = None
    if compacting is not None:
        stop, written = ctx.Event(), ctx.Queue()
        compaction = ctx.Process(target=compactor, args=(compacting, stop, written))
        compaction.start()
    assert proc.pid is not None and cluster.pid is not None
    before = {"broker": cpu_seconds(cluster.pid), "producer": cpu_seconds(os.getpid()),
              "consumer": cpu_seconds(proc.pid)}
    began = time.time()
    produce_all(cluster.bootstrap_servers, topic, payloads)
    result = out.get(timeout=3600)
    cpu = {"broker": cpu_seconds(cluster.pid) - before["broker"],
           "producer": cpu_seconds(os.getpid()) - before["producer"],
           "consumer": cpu_seconds(proc.pid) - before["consumer"]}
    if compaction is not None:
        assert compaction.pid is not None
        cpu["compactor"] = cpu_seconds(compaction.pid)
        stop.set()
        print(f"compactor: {written.get(timeout=3600)} checkpoints written during the run")
        compaction.join()
    proc.join()
    return result[-1] - began, result, cpu


def encryption_alone(store: ParquetSnapshotStore, code: str, tmp: Path) -> None:
    """Write and read the municipality's history rows as one Parquet file, encrypted and plain, alternated three
    times in this process: the cost of encryption without the cluster's and the other load's noise."""
    con = duckdb.connect()
    rows = con.sql(f"SELECT * FROM {store.history_relation(con)}").to_arrow_table()
    key = store.write_key(code)
    best: dict[str, list[float]] = {"encrypted write": [], "plain write": [], "encrypted read": [], "plain read": []}
    for _ in range(3):
        for mode, k in (("encrypted", key), ("plain", None)):
            path = tmp / f"alone-{mode}.parquet"
            t0 = time.perf_counter()
            encrypted_parquet.write_table(rows, path, store.cipher, k)
            best[f"{mode} write"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pq.read_table(path, decryption_properties=store.cipher.decryption() if k else None)
            best[f"{mode} read"].append(time.perf_counter() - t0)
    n = rows.num_rows
    figures = {name: min(times) for name, times in best.items()}
    print(f"{n:,} history rows as one file, best of 3: " + ", ".join(
        f"{name} {s:.2f} s ({s / n * 1e6:.2f} µs/row)" for name, s in figures.items()))
    print(f"encrypted / plain alone: write {figures['encrypted write'] / figures['plain write']:.2f}, "
          f"read {figures['encrypted read'] / figures['plain read']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--municipality", default="131121", help="default: 世田谷区, scaled to --population")
    parser.add_argument("--encryption", choices=("both", "on", "off"), default="both",
                        help="the snapshot store encrypted, plain, or both in the same run (default)")
    parser.add_argument("--compactor", choices=("both", "on", "off"), default="off",
                        help="checkpoints written beside the materialiser: without (default), with, or both")
    args = parser.parse_args()
    encryption = {"both": (False, True), "on": (False,), "off": (True,)}[args.encryption]
    compacting = {"both": (False, True), "on": (True,), "off": (False,)}[args.compactor]
    modes = [(plaintext, c) for plaintext in encryption for c in compacting]

    def name(plaintext: bool, compacted: bool) -> str:
        return ("plain" if plaintext else "encrypted") + ("-compactor" if compacted else "")

    began = time.perf_counter()
    payloads, size = encode_full_load(args.municipality, args.population)
    n = len(payloads)
    print(f"register of {n:,} residents built and encoded in {time.perf_counter() - began:.1f} s "
          f"({size / n:.0f} bytes per event, {size / 1e6:.0f} MB)")

    runs: dict[str, tuple[int, int, float, dict[str, float], int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ClusterHandle.start(brokers=3, data_dir=Path(tmp)) as cluster:
        signed = signature_costs(Platform(load_settings({"data_dir": tmp})), args.municipality, payloads)
        bootstrap = cluster.bootstrap_servers
        cluster.create_topic("bench.baseline", PARTITIONS, 3)
        for mode in (name(*m) for m in modes):
            cluster.create_topic(f"bench.diffs.{mode}", PARTITIONS, 3)
            cluster.create_topic(f"bench.residents.{mode}", 64, 3)
            cluster.create_topic(f"bench.dlq.{mode}", 3, 3)

        base_s, (decoded, _), base_cpu = timed(baseline_consumer, (bootstrap, "bench.baseline", n), cluster,
                                               "bench.baseline", [(k, v, None) for k, v in payloads])
        for plaintext, compacted in modes:
            mode = name(plaintext, compacted)
            names = MaterialiserTopics(f"bench.diffs.{mode}", f"bench.residents.{mode}", f"bench.dlq.{mode}")
            snapshots = Path(tmp) / f"snapshots-{mode}"  # its key rings: tmp/keys/snapshot-store
            pipe_s, (applied, dead, _), pipe_cpu = timed(pipeline_materialiser,
                                                         (bootstrap, names, tmp, str(snapshots), plaintext, n),
                                                         cluster, names.diffs, signed,
                                                         str(snapshots) if compacted else None)
            store = ParquetSnapshotStore(snapshots, plaintext=plaintext)
            t0 = time.perf_counter()
            restored = restore(store, args.municipality, START + dt.timedelta(hours=1), Path(tmp) / f"{mode}.parquet")
            runs[mode] = (applied, dead, pipe_s, pipe_cpu, restored, time.perf_counter() - t0)
        if "encrypted" in runs and "plain" in runs:
            encryption_alone(ParquetSnapshotStore(Path(tmp) / "snapshots-encrypted"), args.municipality, Path(tmp))

    print(f"\n{'':34}{'events':>12}{'seconds':>10}{'events/s':>12}")
    print(f"{'baseline (produce+decode)':34}{decoded:>12,}{base_s:>10.2f}{decoded / base_s:>12,.0f}")
    for mode, (applied, _, pipe_s, _, _, _) in runs.items():
        print(f"{f'pipeline (materialiser, {mode})':34}{applied:>12,}{pipe_s:>10.2f}{applied / pipe_s:>12,.0f}")
        print(f"pipeline ({mode}) / baseline: {(applied / pipe_s) / (decoded / base_s):.2f}")
    cpus = [("baseline", base_cpu, base_s)] + [(f"pipeline, {m}", r[3], r[2]) for m, r in runs.items()]
    for name, cpu, seconds in cpus:
        shares = ", ".join(f"{k} {v:.1f} s ({v / n * 1e6:.1f} µs/event)" for k, v in cpu.items())
        print(f"CPU during the {name} run ({seconds:.1f} s wall, {os.cpu_count()} cores): {shares}")
    for mode, (_, _, _, _, restored, restore_s) in runs.items():
        print(f"point-in-time restore of {args.municipality} ({mode}): {restored:,} records in {restore_s:.2f} s")
    pairs = [("encrypted", "plain")] + [(f"{m}-compactor", m) for m in ("encrypted", "plain")]
    for one, other in pairs:
        if one in runs and other in runs:
            a, b = runs[one], runs[other]
            print(f"{one} / {other}: events/s {(a[0] / a[2]) / (b[0] / b[2]):.2f}, materialiser CPU "
                  f"per event {a[3]['consumer'] / b[3]['consumer']:.2f}, restore time {a[5] / b[5]:.2f}")
    for mode, (applied, dead, *_) in runs.items():
        if n - applied or dead or decoded != n:
            print(f"WARNING ({mode}): lost {n - applied}, dead letters {dead}, baseline decoded {decoded} of {n}")


if __name__ == "__main__":
    main()
