"""The billing processor against the embedded cluster: exact counts per municipality, month, type and vendor;
each certificate counted once when events are redelivered, the topic is replayed and the processor restarts;
bad events to the DLQ; the statistics read what the processor wrote."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from domain.billing import BillingMonth, settle_counts
from infra import kafka
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.billing_totals import certificate_counts
from sinks.certificate_ledger import CertificateLedger
from sinks.statistics import monthly, open_statistics
from streams.billing import BillingProcessor, BillingTopics
from tests.platforms import make_platform
from tests.streams.certificate_events import CHIYODA, SAPPORO, certificate_events, expected_counts, expected_fees
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

MONTHS = [BillingMonth(2025, 11), BillingMonth(2025, 12)]


def ledger_counts(snapshot_dir: Path) -> Counter[tuple[str, str, str, str]]:
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for code in (SAPPORO, CHIYODA):
        for c in certificate_counts(snapshot_dir, code, MONTHS):
            counts[(code, str(c.month), c.certificate_type, c.kiosk_vendor)] += c.certificates
    return counts


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = kafka.make_producer(bootstrap)
    for i, value in enumerate(values):
        kafka.produce(producer, topic, value, f"k{i % 17}".encode())
    assert producer.flush(30) == 0


def run(cluster: ClusterHandle, data_dir: Path, names: BillingTopics, group_id: str) -> BillingProcessor:
    processor = make_platform(data_dir, cluster).billing(group_id=group_id, batch_size=500, flush_events=400,
                                                         flush_seconds=0.2, topic_names=names)
    processor.run(until_caught_up=True, idle_seconds=0.5)
    return processor


def test_counts_once_through_redelivery_replay_and_restart(cluster: ClusterHandle, topic_factory, group_id: str,
                                                          tmp_path: Path) -> None:
    names = BillingTopics(issued=topic_factory(3), dlq=topic_factory(1))
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.certificates.issued"])
    events = certificate_events(600)
    encoded = [serde.encode(e) for e in events]
    # Redelivery inside the topic: a retried publish wrote a tenth of the events a second time.
    produce(cluster.bootstrap_servers, names.issued, encoded + encoded[::10])
    snapshot_dir = tmp_path / "snapshots"

    first = run(cluster, tmp_path, names, group_id)
    redelivered = len(encoded[::10])
    assert first.counters.as_dict() == {"consumed": len(events) + redelivered, "counted": len(events),
                                        "duplicates": redelivered, "dead_lettered": 0}
    expected = expected_counts(events)
    assert ledger_counts(snapshot_dir) == expected
    fees = expected_fees(events)
    for (code, month), collected in fees.items():
        settlement = settle_counts(certificate_counts(snapshot_dir, code, [BillingMonth.parse(month)]))
        n = sum(v for k, v in expected.items() if k[:2] == (code, month))
        assert (settlement.certificates, settlement.fees_collected) == (n, collected)
        assert (settlement.consignment_fee, settlement.net_income) == (117 * n, collected - 117 * n)

    # Replay: the whole topic again (the same events produced once more) and a restarted processor that
    # reads from the beginning under a fresh consumer group. Nothing new is counted.
    produce(cluster.bootstrap_servers, names.issued, encoded)
    replay = run(cluster, tmp_path, names, group_id + ".replay")
    assert replay.counters.counted == 0
    assert replay.counters.duplicates == replay.counters.consumed == 2 * len(events) + redelivered
    assert ledger_counts(snapshot_dir) == expected

    # A restart under the original group resumes at its committed offsets: only the replayed copies are new
    # to it, and they are duplicates too.
    resumed = run(cluster, tmp_path, names, group_id)
    assert (resumed.counters.consumed, resumed.counters.counted) == (len(events), 0)

    # Crash between writing the ledger and committing: the ledger has the batch, the offsets do not.
    late = certificate_events(50, seed=99)
    CertificateLedger(snapshot_dir).record(late)
    produce(cluster.bootstrap_servers, names.issued, [serde.encode(e) for e in late])
    after_crash = run(cluster, tmp_path, names, group_id)
    assert (after_crash.counters.counted, after_crash.counters.duplicates) == (0, len(late))
    assert ledger_counts(snapshot_dir) == expected + expected_counts(late)

    # The published statistics read the same log: the monthly totals equal the certificates counted.
    con = open_statistics(snapshot_dir)
    try:
        table = monthly(con)
    finally:
        con.close()
    assert sum(table.column("計")) == len(events) + len(late)


def test_bad_events_go_to_the_dead_letter_topic(cluster: ClusterHandle, topic_factory, group_id: str,
                                                tmp_path: Path) -> None:
    names = BillingTopics(issued=topic_factory(1), dlq=topic_factory(1))
    registry = FileSchemaRegistry()
    serde = AvroSerde(registry, CONTRACTS["bcl.certificates.issued"])
    good, bad_code, bad_copy = certificate_events(3, seed=3)[:3]
    bad_code = {**bad_code, "municipality_code": "011003"}  # wrong check digit
    bad_copy = {**bad_copy, "copy_number": 4, "copies": 3}
    produce(cluster.bootstrap_servers, names.issued,
            [serde.encode(good), serde.encode(bad_code), serde.encode(bad_copy), b"\x00\x00\x00\x00\x07not avro"])
    processor = run(cluster, tmp_path, names, group_id)
    assert processor.counters.as_dict() == {"consumed": 4, "counted": 1, "duplicates": 0, "dead_lettered": 3}
    letters = [AvroSerde(registry, CONTRACTS["bcl.dlq"]).decode(m.value())
               for m in read_topic(cluster.bootstrap_servers, names.dlq)]
    assert sorted(d["reason_code"] for d in letters) == ["BAD_CERTIFICATE", "BAD_CERTIFICATE", "MALFORMED"]
    assert all(d["processor"] == "billing-processor" and d["topic"] == names.issued for d in letters)


def test_bcl_billing_run_on_the_catalogue_topic(cluster: ClusterHandle, group_id: str, tmp_path: Path) -> None:
    """`bcl billing run --until-caught-up` as the demo runs it. Other tests may publish on the catalogue topic
    too, so this checks that every certificate of this test reached the log once."""
    import json

    from click.testing import CliRunner

    from infra import topics
    from streams.cli import cli

    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    events = certificate_events(40, seed=1234)
    encoded = [serde.encode(e) for e in events]
    produce(cluster.bootstrap_servers, topics.CERTIFICATES_ISSUED, encoded + encoded[:5])
    args = ["--bootstrap-servers", cluster.bootstrap_servers, "--data-dir", str(tmp_path), "billing", "run",
            "--until-caught-up", "--idle-seconds", "0.5", "--group-id", group_id]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    counters = json.loads(result.output.strip().splitlines()[-1])
    assert counters["counted"] >= len(events) and counters["duplicates"] >= 5
    ids = [r for c in (SAPPORO, CHIYODA) for r in certificate_counts(tmp_path / "snapshots", c, MONTHS)]
    assert sum(c.certificates for c in ids) >= len(events)
    ledger = CertificateLedger(tmp_path / "snapshots")
    assert ledger.record(events).duplicates == len(events)  # all of them are in the log already
