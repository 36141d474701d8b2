"""Test world of the certificate worker: a JPKI-TEST PKI with its repository server, residents with
cards in a snapshot store, virtual cards signing kiosk requests, and a clock the test can move."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from cryptography.hazmat.primitives.asymmetric import rsa

from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool
from certgen.ocsp_responder import RepositoryContent, RepositoryServer, serve_repository
from certgen.pki_directory import IssuedCard, PkiDirectory
from certgen.user_certificates import CertificateKind
from domain.challenge import challenge_bytes
from domain.japan_time import JST
from infra import topics
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.transport import InProcessTransport
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.snapshot_store import ParquetSnapshotStore, history_schema
from streams.certificate_worker import WorkerTopics
from tests.factories import make_resident

# A Friday morning in Japan: inside service hours; the clock runs on from here.
ANCHOR = dt.datetime(2026, 11, 20, 10, 0, tzinfo=JST).astimezone(dt.UTC)
PIN = "1234"
TANABE = "302066"  # 田辺市
CHIYODA = "131016"  # 千代田区


class ShiftableClock:
    """ANCHOR + real elapsed time + a shift the test can change (to reach night or a maintenance window)."""

    def __init__(self, anchor: dt.datetime = ANCHOR) -> None:
        self._anchor = anchor
        self._started = time.monotonic()
        self.shift = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return self._anchor + dt.timedelta(seconds=time.monotonic() - self._started) + self.shift


@dataclass
class Holder:
    """A card holder (or an impostor's card): the card key and certificate."""

    serial: str
    key: rsa.RSAPrivateKey
    certificate_der: bytes

    def sign(self, challenge: bytes) -> bytes:
        card = JpkiCard(auth=CardKey(self.key, self.certificate_der), auth_pin=PIN)
        client = JpkiCardClient(InProcessTransport(card))
        return client.authenticate(PIN, challenge).signature


def holder_of(card: IssuedCard) -> Holder:
    from cryptography.hazmat.primitives.serialization import Encoding
    return Holder(card.serial, card.key, card.certificate.public_bytes(Encoding.DER))


@dataclass
class KioskWorld:
    root: Path
    pki: PkiDirectory
    server: RepositoryServer
    keys: list[rsa.RSAPrivateKey]
    store: ParquetSnapshotStore
    serials: itertools.count = field(default_factory=lambda: itertools.count(0x1000))

    def next_serial(self) -> str:
        return f"{next(self.serials):016x}"

    def key(self, i: int) -> rsa.RSAPrivateKey:
        return self.keys[i % len(self.keys)]

    def card(self, i: int, now: dt.datetime = ANCHOR, **kwargs: Any) -> Holder:
        serial = self.next_serial()
        return holder_of(self.pki.issue_card(serial, CertificateKind.CARD, now, key=self.key(i), **kwargs))


def make_world(root: Path, key_count: int = 6) -> KioskWorld:
    pool = KeyPool(root / "keys", key_count)
    keys = pool.load()
    cycle = itertools.cycle(keys)
    server = serve_repository("127.0.0.1", 0)
    pki = PkiDirectory(root / "pki", JpkiEndpoints(server.url))
    pki.initialise(ANCHOR - dt.timedelta(days=10), key_factory=lambda: next(cycle))
    # The responder lives on the test's timeline too (its answers are checked against the worker's clock).
    server.content = RepositoryContent(pki.ocsp_identity(), pki.index, pki.daily_crl, ShiftableClock())
    server.start_in_thread()
    return KioskWorld(root, pki, server, keys, ParquetSnapshotStore(root / "snapshots"))


def resident_with_card(world: KioskWorld, holder: Holder | None, municipality_code: str, n: int,
                       **overrides: Any) -> dict[str, Any]:
    cards = [] if holder is None else [{"serial": holder.serial, "kind": "CARD", "not_before": dt.date(2026, 1, 1),
                                        "not_after": dt.date(2031, 1, 1)}]
    return make_resident(municipality_code, n, jpki_certificates=cards, **overrides)


def load_residents(store: ParquetSnapshotStore, residents: list[dict[str, Any]],
                   at: dt.datetime = ANCHOR - dt.timedelta(days=30), first_sequence: int = 1,
                   change_type: str = "FULL_LOAD") -> None:
    """Write the residents into the snapshot store as history rows (a FULL_LOAD a month before ANCHOR unless
    told), per municipality."""
    schema = history_schema()
    by_municipality: dict[str, list[dict[str, Any]]] = {}
    for r in residents:
        by_municipality.setdefault(r["municipality_code"], []).append(r)
    for code, records in by_municipality.items():
        rows = []
        for seq, record in enumerate(records, start=first_sequence):
            rows.append({"sequence": seq, "change_type": change_type, "event_time": at,
                         "event_notified_on": at.date(), "sent_at": at, "event_id": str(uuid.uuid4()),
                         "removed": False, **record})
        store.append_history(code, pa.Table.from_pylist(rows, schema=schema))


def private_topics(topic_factory: Any, partitions: int = 3) -> WorkerTopics:
    return WorkerTopics(requests=topic_factory(partitions), responses=topic_factory(partitions),
                        issued=topic_factory(partitions), residents=topic_factory(2), revocations=topic_factory(1),
                        disasters=topic_factory(1), dlq=topic_factory(1))


def make_request(holder: Holder, clock: ShiftableClock, *, municipality_code: str = TANABE,
                 certificate_type: str = "RESIDENT_RECORD", copies: int = 1, paid_yen: int | None = None,
                 request_id: str | None = None, sign_for: str | None = None, **fields: Any) -> dict[str, Any]:
    """A kiosk request signed by the holder's card over its challenge (domain.challenge: every field).
    sign_for: sign the challenge of the same request with another request id."""
    request_id = request_id or str(uuid.uuid4())
    requested_at = clock().replace(microsecond=(clock().microsecond // 1000) * 1000)
    request = {"request_id": request_id, "kiosk_id": "KIOSK-0001", "kiosk_vendor": "seven-eleven", "centre": "EAST",
               "kiosk_municipality_code": CHIYODA, "municipality_code": municipality_code,
               "certificate_type": certificate_type, "household_scope": "SELF",
               "include_head_and_relationship": False, "include_domicile": False, "fiscal_year": None,
               "copies": copies, "auth_certificate": holder.certificate_der, "requested_at": requested_at,
               "paid_yen": 300 * copies if paid_yen is None else paid_yen, **fields}
    request["challenge_signature"] = holder.sign(challenge_bytes({**request, "request_id": sign_for or request_id}))
    return request


class Kiosk:
    """Sends requests and collects responses by request id (a consumer on the responses topic)."""

    def __init__(self, bootstrap: str, names: WorkerTopics) -> None:
        registry = FileSchemaRegistry()
        self.names = names
        self.requests = AvroSerde(registry, CONTRACTS[topics.KIOSK_REQUESTS])
        self.responses = AvroSerde(registry, CONTRACTS[topics.KIOSK_RESPONSES])
        self.issued = AvroSerde(registry, CONTRACTS[topics.CERTIFICATES_ISSUED])
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kiosk-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024,
                                  "max.partition.fetch.bytes": 16 * 1024 * 1024})
        partitions = self.consumer.list_topics(names.responses, timeout=10).topics[names.responses].partitions
        self.consumer.assign([TopicPartition(names.responses, p, 0) for p in partitions])
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def send(self, request: dict[str, Any]) -> str:
        self.producer.produce(self.names.requests, self.requests.encode(request), request["request_id"].encode())
        self.producer.flush(10)
        return request["request_id"]

    def send_raw(self, value: bytes, key: bytes) -> None:
        self.producer.produce(self.names.requests, value, key)
        self.producer.flush(10)

    def poll(self, timeout: float = 0.2) -> None:
        for msg in self.consumer.consume(100, timeout):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(msg.error())
            response = self.responses.decode(msg.value())
            self.answers.setdefault(response["request_id"], []).append(response)

    def wait_for(self, request_ids: list[str], timeout: float = 30.0, count: int = 1) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(self.answers.get(r, ())) >= count for r in request_ids):
                return {r: self.answers[r][0] for r in request_ids}
            self.poll()
        missing = [r for r in request_ids if len(self.answers.get(r, ())) < count]
        raise TimeoutError(f"no answer within {timeout} s for {len(missing)} requests, e.g. {missing[:3]}")

    def ask(self, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for([self.send(request)], timeout)[request["request_id"]]

    def close(self) -> None:
        self.consumer.close()

