"""`/metrics` of a running processor, scraped over HTTP, counts what it processed."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.register_validation import message_key
from infra.cluster_control import ClusterHandle
from infra.metrics import serve_metrics
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.adapter import publish_signed
from streams.materialiser import MaterialiserTopics
from streams.settings import load_settings
from tests.factories import make_change, make_resident
from tests.platforms import make_platform

pytestmark = pytest.mark.integration

MUNI = "302066"


def scrape(url: str, processor: str) -> dict[str, float]:
    """The samples of one processor label, by sample name (partitions of the lag summed)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("processor") == processor:
                samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return samples


def test_the_materialiser_exports_what_it_consumed_applied_and_dead_lettered(
        cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    names = MaterialiserTopics(diffs=topic_factory(3), residents=topic_factory(3), dlq=topic_factory(1))
    registry = FileSchemaRegistry()
    serde = AvroSerde(registry, CONTRACTS["bcl.register.diffs"])
    platform = make_platform(tmp_path, cluster)
    changes = [make_change(i, make_resident(MUNI, i)) for i in range(1, 21)]
    messages = [(MUNI, message_key(c["municipality_code"], c["resident_code"]), serde.encode(c)) for c in changes]
    messages += [(MUNI, b"302066:x", b"\x00\x00\x00\x00\x01not avro")] * 3  # undecodable: dead letters
    publish_signed(messages, cluster.bootstrap_servers, platform.register_signer, topic=names.diffs)

    server = serve_metrics(None)
    materialiser = platform.materialiser(group_id=group_id, topic_names=names, flush_seconds=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=materialiser.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        samples = scrape(server.url, group_id)
        while samples.get("bcl_messages_applied_total", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
            samples = scrape(server.url, group_id)
        assert thread.is_alive()  # scraped while it runs
        assert samples["bcl_messages_consumed_total"] == 23 == materialiser.counters.consumed
        assert samples["bcl_messages_applied_total"] == 20 == materialiser.counters.applied
        assert samples["bcl_messages_dead_lettered_total"] == 3 == materialiser.counters.dead_lettered
        assert samples["bcl_batch_seconds_count"] >= 1
        deadline = time.monotonic() + 10  # the lag is refreshed on a timer
        while samples.get("bcl_consumer_lag") is None and time.monotonic() < deadline:
            time.sleep(0.2)
            samples = scrape(server.url, group_id)
        assert samples["bcl_consumer_lag"] == 0
    finally:
        stop.set()
        thread.join(30)
        server.close()


def test_the_metrics_port_setting_and_a_server_on_a_chosen_port() -> None:
    assert load_settings(environ={}).metrics_port is None
    assert load_settings(environ={"BCL_METRICS_PORT": "9464"}).metrics_port == 9464
    assert load_settings({"metrics_port": 9465}, environ={"BCL_METRICS_PORT": "9464"}).metrics_port == 9465
    chosen = serve_metrics(None)
    port = int(chosen.url.rsplit(":", 1)[1].split("/")[0])
    chosen.close()
    server = serve_metrics(port)  # the port the OS chose a moment ago, now asked for explicitly
    try:
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert b"bcl_messages_consumed_total" in response.read()
    finally:
        server.close()
