"""罹災証明書 and 被災証明書 at the kiosk, end to end on the embedded cluster: a disaster declared in the centre's
disaster store (its ledger built from the real backup as of 発災日時), published by the relay and closed; the worker
follows bcl.disaster.events (each event once, the latest its state) and reads the household's ledger row, its
dwelling's survey (entered through the store's API, as `bcl disaster survey` does) and its accepted 被災証明書
application from the store itself; requests signed by virtual cards; the issued sheet verified from a scan of its
back."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from certgen.verification import load_scan, verify_pdf, verify_scan
from domain.disaster_applications import Procedure
from domain.disasters import declaration
from infra import topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.disaster_applications import SignedApplication
from sinks.issuance_archive import IssuanceArchive
from streams.certificate_worker import WorkerOptions
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
    """The head and the affected household's member were registered a month before; the outsider moved in after
    the disaster (occurred three days before ANCHOR), a day before ANCHOR."""
    h = {name: world.card(i) for i, name in enumerate(["head", "outsider", "affected"])}
    load_residents(world.store, [resident_with_card(world, h["head"], TANABE, 3),
                                 resident_with_card(world, h["affected"], TANABE, 9)])
    load_residents(world.store, [resident_with_card(world, h["outsider"], TANABE, 7)],
                   at=ANCHOR - dt.timedelta(days=1), first_sequence=3, change_type="MOVE_IN")
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


def _flat(pdf: bytes, tmp_path: Path) -> str:
    return pdf_text(pdf, tmp_path).replace(" ", "").replace("\n", "")


def test_disaster_certificates_follow_the_declared_disaster_and_the_ledger(
        cluster: ClusterHandle, running: Running, world: KioskWorld, people: dict[str, Holder],
        tmp_path: Path) -> None:
    worker, kiosk, clock = running.worker, running.kiosk, running.clock
    index = worker.disaster_facts

    def ask(holder: Holder, kind: str = "DISASTER_DAMAGE", **fields: Any) -> dict[str, Any]:
        return kiosk.ask(make_request(holder, clock, certificate_type=kind, paid_yen=10, **fields))

    def resident_code(holder: Holder) -> str:
        [record] = worker.directory.by_serial(holder.serial)
        return str(record["resident_code"])

    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")

    # Declared on the centre's disaster store (the file the worker reads), its ledger built from the backup as of
    # 発災日時, and published by the relay, twice over (at least once): applied once.
    platform = make_platform(running.root, cluster, pki=world.pki, snapshot_store=world.store)
    platform.disaster_store.topic = running.names.disasters  # the disaster events on the test's private topic
    relay = platform.disaster_relay()
    disaster, builds = platform.disaster_ledger.declare(declaration(
        name="令和8年紀伊半島沖地震", kind="earthquake", municipality_codes=[TANABE],
        occurred_at=ANCHOR - dt.timedelta(days=3), now=ANCHOR), ANCHOR)
    assert [b.residents for b in builds] == [2]  # type: ignore[union-attr]
    assert relay.publish_pending() == 1
    assert relay.republish_all() == 1 and relay.publish_pending() == 1
    _wait(lambda: [d.disaster_id for d in index.declared_disasters(TANABE)] == [disaster.disaster_id],
          "the worker to see the declared disaster")
    # The register's move-in after 発災日時 reaches the ledger as an arrival (marked, no household as of then).
    platform.disaster_ledger.refresh(disaster.disaster_id, ANCHOR)
    rows = {r["resident_code"]: r for r in platform.disaster_ledger.residents(disaster.disaster_id, TANABE)}
    assert rows[resident_code(people["outsider"])]["in_base"] == 0

    # Declared, but the requester arrived after the disaster: not in its ledger; the head is, but not surveyed.
    refused(ask(people["outsider"]), "NOT_IN_DISASTER_LEDGER")
    not_assessed = ask(people["head"])
    refused(not_assessed, "DAMAGE_NOT_ASSESSED")
    assert "被害認定調査" in not_assessed["message"]
    refused(ask(people["head"], "DISASTER_AFFECTED"), "DAMAGE_NOT_REPORTED")

    # Surveyed 半壊 (床上浸水) through the store's API: issued at 10 yen a copy with the level, billed like the others.
    dwelling = rows[resident_code(people["head"])]["dwelling_id"]
    platform.damage_assessment.survey(disaster.disaster_id, dwelling, surveyor="調査員 一", surveyed_on=None,
                                      now=ANCHOR, loss_ratio="0.25", flood_depth="ABOVE_FLOOR")
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
    platform.damage_assessment.survey(disaster.disaster_id, dwelling, surveyor="調査員 二", surveyed_on=None,
                                      now=ANCHOR, level="ZENKAI", reason="再調査")
    second = ask(people["head"])
    assert second["status"] == "ISSUED", second["reason_code"]
    assert "被害の程度全壊" in _flat(second["pdf"], tmp_path) and "床上" not in _flat(second["pdf"], tmp_path)
    settings = settings_for(running.root)
    archive = IssuanceArchive(settings.issuance_dir)
    record = archive.get(first["certificate_ids"][0])
    assert record is not None
    assert "被害の程度半壊" in _flat(archive.read_pdf(record), tmp_path)
    assert verify_pdf(first["pdf"], [world.pki.seal_root().certificate], archive).valid
    scan = load_scan(degraded_scan_png(first["pdf"], tmp_path))
    verified = verify_scan(scan, archive, platform.scramble_key)
    assert verified.matches and verified.certificate_id == first["certificate_ids"][0], verified.reasons

    # 被災証明書: once staff accepted the household's application for one (stored as the intake stores a verified
    # one; the card signature is tested with the intake). An open application is not enough.
    applications = platform.disaster_applications
    applied = applications.submit(SignedApplication(
        str(uuid.uuid4()), disaster.disaster_id, Procedure.HISAI_CERTIFICATE, "affected@example.jp", ANCHOR,
        people["affected"].serial, b"certificate", b"signature"), ANCHOR)
    assert applied.matched, applied
    refused(ask(people["affected"], "DISASTER_AFFECTED"), "DAMAGE_NOT_REPORTED")
    applications.accept(applied.application_id, "tanabe.staff", ANCHOR)
    report = ask(people["affected"], "DISASTER_AFFECTED")
    assert report["status"] == "ISSUED", report["reason_code"]
    assert f"受付番号{applied.application_id}" in _flat(report["pdf"], tmp_path)

    # Every ledger read audited per municipality and request, issued or refused; no personal data in the line.
    audit = [json.loads(line) for line in settings.audit_file.read_text(encoding="utf-8").splitlines()]
    ledger_reads = [a for a in audit if a.get("action") == "disaster_ledger_read"]
    assert ledger_reads and {a["municipality_code"] for a in ledger_reads} == {TANABE}
    assert request["request_id"] in {r for a in ledger_reads for r in a["request_ids"]}
    assert resident_code(people["head"]) not in settings.audit_file.read_text(encoding="utf-8")

    # Closed: refused again, whatever the ledger holds.
    platform.disaster_store.close_disaster(disaster.disaster_id, ANCHOR, ANCHOR)
    relay.publish_pending()  # the surveys' and applications' events too, on their own topics
    _wait(lambda: not index.declared_disasters(TANABE), "the worker to see the disaster closed")
    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")
    # Late duplicates of both events (the DECLARED one first) do not reopen it.
    relay.republish_all()
    relay.publish_pending()
    _wait(lambda: index.events_received == 5, "the worker to receive the duplicates")
    assert not index.declared_disasters(TANABE)
    refused(ask(people["head"]), "DISASTER_NOT_DECLARED")
    platform.disaster_store.close()
