"""罹災証明書 and 被災証明書 at the kiosk, end to end on the embedded cluster: a disaster declared and closed in
the disaster store and published by the relay; the worker follows bcl.disaster.events (each event once, the
latest its state); the household's ledger row, survey and report fed into the worker's index as the
integrator's feeds will; requests signed by virtual cards; the issued sheet verified from a scan of its back."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from certgen.verification import load_scan, verify_pdf, verify_scan
from domain.damage_levels import DamageLevel, FloodDepth
from domain.disasters import declaration
from infra import topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.disaster_store import DisasterStore
from sinks.issuance_archive import IssuanceArchive
from streams.certificate_worker import WorkerOptions
from streams.disaster_facts import DwellingSurvey, LedgerResident
from streams.disaster_relay import DisasterRelay
from tests.certgen.issued_world import degraded_scan_png
from tests.certgen.pdf_fixtures import pdf_text
from tests.platforms import make_platform, settings_for
from tests.streams.kiosk_world import (
    ANCHOR,
    TANABE,
    Holder,
    KioskWorld,
    load_residents,
    make_request,
    make_world,
    resident_with_card,
)
from tests.streams.test_certificate_worker import Running, refused, start_worker
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskWorld]:
    w = make_world(tmp_path_factory.mktemp("disaster-world"), key_count=3)
    yield w
    w.server.shutdown()


@pytest.fixture(scope="module")
def people(world: KioskWorld) -> dict[str, Holder]:
    h = {name: world.card(i) for i, name in enumerate(["head", "outsider", "affected"])}
    load_residents(world.store, [resident_with_card(world, h["head"], TANABE, 3),
                                 resident_with_card(world, h["outsider"], TANABE, 7),
                                 resident_with_card(world, h["affected"], TANABE, 9)])
    return h


@pytest.fixture(scope="module")
def running(cluster: ClusterHandle, world: KioskWorld, people: dict[str, Holder],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    r = start_worker(cluster, world, tmp_path_factory.mktemp("disaster-worker"), WorkerOptions(render_processes=0))
    yield r
    r.stop.set()
    r.thread.join(30)
    r.kiosk.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _ledger_row(running: Running, holder: Holder, disaster_id: str) -> LedgerResident:
    [record] = running.worker.directory.by_serial(holder.serial)
    return LedgerResident(disaster_id, TANABE, record["resident_code"], record["household_number"],
                          record["household_head_name"], "和歌山県田辺市新屋敷町1番地", f"D-{record['resident_code']}",
                          "和歌山県田辺市新屋敷町1番地")


def _flat(pdf: bytes, tmp_path: Path) -> str:
    return pdf_text(pdf, tmp_path).replace(" ", "").replace("\n", "")


def test_disaster_certificates_follow_the_declared_disaster_and_the_ledger(
        running: Running, world: KioskWorld, people: dict[str, Holder], tmp_path: Path) -> None:
    worker, kiosk, clock = running.worker, running.kiosk, running.clock
    index = worker.disaster_facts

    def ask(holder: Holder, kind: str = "DISASTER_DAMAGE", **fields: Any) -> dict[str, Any]:
        return kiosk.ask(make_request(holder, clock, certificate_type=kind, paid_yen=10, **fields))

    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")

    # Declared in the durable store and published by the relay, twice over (at least once): applied once.
    store = DisasterStore(tmp_path / "disaster.sqlite3", AvroSerde(FileSchemaRegistry(),
                                                                    CONTRACTS[topics.DISASTER_EVENTS]),
                          topic=running.names.disasters)
    relay = DisasterRelay(worker.bootstrap_servers, store)
    disaster = store.declare(declaration(name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=[TANABE],
                                         occurred_at=ANCHOR - dt.timedelta(days=3), now=ANCHOR), ANCHOR)
    assert relay.publish_pending() == 1
    assert relay.republish_all() == 1 and relay.publish_pending() == 1
    _wait(lambda: [d.disaster_id for d in index.declared_disasters(TANABE)] == [disaster.disaster_id],
          "the worker to see the declared disaster")

    # Declared, but the requester's household is not in its ledger; then in it, but not surveyed.
    refused(ask(people["outsider"]), "NOT_IN_DISASTER_LEDGER")
    head = _ledger_row(running, people["head"], disaster.disaster_id)
    index.apply_ledger_resident(disaster.disaster_id, TANABE, head.resident_code, head)
    not_assessed = ask(people["head"])
    refused(not_assessed, "DAMAGE_NOT_ASSESSED")
    assert "被害認定調査" in not_assessed["message"]
    refused(ask(people["head"], "DISASTER_AFFECTED"), "DAMAGE_NOT_REPORTED")

    # Surveyed 半壊: issued at 10 yen a copy with the level printed, billed like the others.
    index.apply_dwelling_survey(disaster.disaster_id, head.dwelling_id,
                                DwellingSurvey(DamageLevel.HANKAI, FloodDepth.ABOVE_FLOOR, "津波による浸水"))
    request = make_request(people["head"], clock, certificate_type="DISASTER_DAMAGE", copies=2, paid_yen=20)
    first = kiosk.ask(request)
    assert first["status"] == "ISSUED", first["reason_code"]
    assert first["fee_yen"] == 20 and len(first["certificate_ids"]) == 2
    text = _flat(first["pdf"], tmp_path)
    for expected in ("罹災証明書", "被害の程度半壊", "浸水の程度床上浸水", "令和8年紀伊半島沖地震（地震）",
                     f"第R-{TANABE}-{disaster.disaster_id.replace('-', '')[:8].upper()}-", "田辺市長"):
        assert expected in text, expected
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    issued = [e for e in (serde.decode(m.value()) for m in read_topic(worker.bootstrap_servers, running.names.issued))
              if e["request_id"] == request["request_id"]]
    assert {(e["certificate_type"], e["fee_yen"], e["copies"]) for e in issued} == {("DISASTER_DAMAGE", 10, 2)}

    # Re-surveyed 全壊: a new certificate says 全壊; the one issued before still is, and verifies as, 半壊.
    index.apply_dwelling_survey(disaster.disaster_id, head.dwelling_id, DwellingSurvey(DamageLevel.ZENKAI))
    second = ask(people["head"])
    assert second["status"] == "ISSUED", second["reason_code"]
    assert "被害の程度全壊" in _flat(second["pdf"], tmp_path) and "床上" not in _flat(second["pdf"], tmp_path)
    settings = settings_for(running.root)
    archive = IssuanceArchive(settings.issuance_dir)
    record = archive.get(first["certificate_ids"][0])
    assert record is not None
    assert "被害の程度半壊" in _flat(archive.read_pdf(record), tmp_path)
    platform = make_platform(running.root, pki=world.pki)
    assert verify_pdf(first["pdf"], [world.pki.seal_root().certificate], archive).valid
    scan = load_scan(degraded_scan_png(first["pdf"], tmp_path))
    verified = verify_scan(scan, archive, platform.scramble_key)
    assert verified.matches and verified.certificate_id == first["certificate_ids"][0], verified.reasons

    # 被災証明書: once the household reported damage to other property.
    affected = _ledger_row(running, people["affected"], disaster.disaster_id)
    index.apply_ledger_resident(disaster.disaster_id, TANABE, affected.resident_code, affected)
    index.apply_damage_report(disaster.disaster_id, TANABE, affected.household_number, ["自動車（浸水）"])
    report = ask(people["affected"], "DISASTER_AFFECTED")
    assert report["status"] == "ISSUED", report["reason_code"]
    assert "届出の内容自動車（浸水）" in _flat(report["pdf"], tmp_path)

    # Closed: refused again, whatever the ledger holds.
    store.close_disaster(disaster.disaster_id, ANCHOR, ANCHOR)
    assert relay.publish_pending() == 1
    _wait(lambda: not index.declared_disasters(TANABE), "the worker to see the disaster closed")
    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")
    # Late duplicates of both events (the DECLARED one first) do not reopen it.
    assert relay.republish_all() == 2 and relay.publish_pending() == 2
    _wait(lambda: index.events_received == 5, "the worker to receive the duplicates")
    assert not index.declared_disasters(TANABE)
    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")
    store.close()
