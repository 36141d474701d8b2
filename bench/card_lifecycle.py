"""How fast `bcl pki sync` (streams/card_lifecycle.py) brings the PKI in step with a register.

    .venv/bin/python bench/card_lifecycle.py [--population 20000] [--days 120] [--code 302040]

Starts an embedded cluster, publishes a simulated register (full load, then the days of changes),
runs the backup materialiser, then the card lifecycle processor twice: the first run issues every
certificate of the full load and applies the renewals and revocations; the second, with a new
consumer group, replays everything and finds it done (the idempotency path). Prints both times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import tempfile
import time
from pathlib import Path

from infra.cluster_control import ClusterHandle
from streams.adapter import publish
from streams.card_lifecycle import CardLifecycleTopics
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--code", default="302040")
    parser.add_argument("--start", default="2026-01-05T00:00:00+09:00")
    args = parser.parse_args()
    settings = load_settings()
    reference = load_reference_data()
    sim = RegisterSimulator(reference, args.code, population=args.population, seed=7,
                            start=dt.datetime.fromisoformat(args.start), font_path=settings.mincho_font)
    events = list(sim.full_load()) + list(sim.changes(args.days))
    with tempfile.TemporaryDirectory() as tmp, ClusterHandle.start(brokers=3, data_dir=Path(tmp) / "c") as cluster:
        root = Path(tmp)
        platform = Platform(load_settings({"data_dir": root, "bootstrap_servers": cluster.bootstrap_servers}))
        registry = platform.registry
        names = MaterialiserTopics("bench.diffs", "bench.residents", "bench.dlq")
        for name in (names.diffs, names.residents, "bench.revocations"):
            cluster.create_topic(name, 8, 3)
        cluster.create_topic(names.dlq, 1, 3)
        # Publish and materialise together: the mock cluster keeps only ~5 MiB per partition.
        publish(events, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
        platform.materialiser(group_id="bench.backup", topic_names=names).run(until_caught_up=True, idle_seconds=0.5)
        pool = platform.key_pool(16)
        keys = itertools.cycle(pool.load())
        platform.pki.initialise(dt.datetime(2020, 1, 1, tzinfo=dt.UTC), key_factory=lambda: next(keys))
        for group in ("bench.cards", "bench.replay"):
            began = time.perf_counter()
            counters = platform.card_lifecycle(
                pool, group_id=group, backup_group_id="bench.backup",
                topic_names=CardLifecycleTopics(names.diffs, "bench.revocations"),
            ).run(until_caught_up=True, idle_seconds=0.5)
            elapsed = time.perf_counter() - began - 0.5  # minus the idle time that ends the run
            print(f"{group}: {counters.consumed:,} events, {counters.issued:,} issued, {counters.revoked:,} revoked, "
                  f"{counters.already_issued + counters.already_revoked:,} already done in {elapsed:.1f} s "
                  f"({counters.consumed / elapsed:,.0f} events/s)")


if __name__ == "__main__":
    main()
