"""The kiosk's Kafka side without the certificate worker: PIN handling sends nothing, and the one
response router per process hands each of many concurrent requests its own response.

A small responder thread stands in for the centre here: it checks each request's card signature over
the challenge (with the certificate the kiosk sent) and answers in scrambled order, so that a router
that matched by arrival order instead of by request id would fail."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from domain.challenge import challenge_bytes
from infra.cluster_control import ClusterHandle
from infra.kafka import make_producer
from infra.processor_runtime import BatchHandler, LoopOptions, Partitions, ProcessorRuntime, Source
from infra.topics import KIOSK_REQUESTS, KIOSK_RESPONSES
from kiosk_sim.card import JpkiCard
from kiosk_sim.kiosk import (
    MESSAGE_PIN_LOCKED,
    CertificateChoice,
    Kiosk,
    KioskConnection,
    KioskTerminal,
    KioskTopics,
    OutcomeStatus,
)
from kiosk_sim.transport import InProcessTransport
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

TERMINAL = KioskTerminal("seven-eleven-302040-00001", "seven-eleven", "EAST", "302040")
CHOICE = CertificateChoice("302040", "RESIDENT_RECORD", household_scope="WHOLE_HOUSEHOLD")


class Responder(BatchHandler):
    """Answers every request on `requests`: ISSUED with a PDF naming the request if the card's signature
    over the challenge verifies, else REFUSED; answers are held back and sent in shuffled batches."""

    def __init__(self, bootstrap: str, group_id: str, topics: KioskTopics) -> None:
        registry = FileSchemaRegistry()
        self.requests = AvroSerde(registry, CONTRACTS[KIOSK_REQUESTS])
        self.responses = AvroSerde(registry, CONTRACTS[KIOSK_RESPONSES])
        # The embedded mock broker holds a fetch for fetch.wait.max.ms even when data arrives meanwhile.
        self.runtime = ProcessorRuntime(group_id, bootstrap, Source((topics.requests,)), self,
                                        LoopOptions(batch_size=51, poll_timeout=0.05, low_latency=True, commit=False),
                                        consumer_config={"fetch.wait.max.ms": 5})
        self.runtime.assign()
        self.rng = random.Random(5)
        self.producer: Producer = make_producer(bootstrap)
        self.topics = topics
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.answered = 0

    def answer(self, request: dict) -> dict:
        certificate = x509.load_der_x509_certificate(request["auth_certificate"])
        challenge = challenge_bytes(request)
        try:
            certificate.public_key().verify(request["challenge_signature"], challenge,  # type: ignore[union-attr]
                                            padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return {"request_id": request["request_id"], "status": "REFUSED", "reason_code": "BAD_SIGNATURE",
                    "message": "署名を確認できません。", "responded_at": dt.datetime.now(dt.UTC)}
        return {"request_id": request["request_id"], "status": "ISSUED", "certificate_ids": [request["request_id"]],
                "pdf": b"%PDF-1.7 " + request["request_id"].encode(), "pages": 1, "fee_yen": request["paid_yen"],
                "responded_at": dt.datetime.now(dt.UTC)}

    def run(self) -> None:
        try:
            self.runtime.run(self.stop)
        finally:
            self.producer.flush(10)
            self.runtime.close()

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        batch = list(messages)
        self.rng.shuffle(batch)
        for msg in batch:
            response = self.answer(self.requests.decode(msg.value()))
            self.producer.produce(self.topics.responses, self.responses.encode(response), msg.key())
            self.answered += 1
        self.producer.poll(0)

    def __enter__(self) -> Responder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> KioskTopics:
    return KioskTopics(requests=topic_factory(3, prefix="kiosk-requests"),
                       responses=topic_factory(3, prefix="kiosk-responses"))


@pytest.fixture
def connection(cluster: ClusterHandle, topics: KioskTopics) -> Iterator[KioskConnection]:
    with KioskConnection(cluster.bootstrap_servers, FileSchemaRegistry(), topics=topics,
                         response_timeout=20) as conn:
        yield conn


def test_wrong_pin_three_times_locks_the_card_and_nothing_is_sent(
        cluster: ClusterHandle, topics: KioskTopics, connection: KioskConnection,
        make_card: Callable[..., JpkiCard]) -> None:
    card = make_card()
    kiosk = Kiosk(TERMINAL, connection)
    messages = []
    for expected_tries in (2, 1):
        with InProcessTransport(card) as transport:
            outcome = kiosk.issue(transport, "9999", CHOICE)
        assert outcome.status is OutcomeStatus.WRONG_PIN and not outcome.sent
        assert f"あと{expected_tries}回" in outcome.message
        messages.append(outcome.message)
    with InProcessTransport(card) as transport:
        third = kiosk.issue(transport, "9999", CHOICE)
    assert third.status is OutcomeStatus.PIN_LOCKED and third.message == MESSAGE_PIN_LOCKED
    assert "ロック" in third.message and "窓口" in third.message
    # Locked for good: even the right PIN is turned away, without using a try.
    with InProcessTransport(card) as transport:
        fourth = kiosk.issue(transport, "1234", CHOICE)
    assert fourth.status is OutcomeStatus.PIN_LOCKED and not fourth.sent
    # A PIN that cannot be one is not sent to the card at all.
    fresh = make_card()
    with InProcessTransport(fresh) as transport:
        malformed = kiosk.issue(transport, "12a4", CHOICE)
    assert malformed.status is OutcomeStatus.CARD_ERROR and "4桁" in malformed.message
    from kiosk_sim.card import PinId
    assert fresh.tries_left(PinId.AUTH) == 3
    assert connection.counters.sent == 0
    assert read_topic(cluster.bootstrap_servers, topics.requests) == []


def test_router_hands_each_concurrent_request_its_own_response(
        cluster: ClusterHandle, topics: KioskTopics, connection: KioskConnection, group_id: str,
        make_card: Callable[..., JpkiCard], tmp_path: Path) -> None:
    terminals = [KioskTerminal(f"lawson-302040-{i:05d}", "lawson", "WEST", "302040") for i in range(16)]
    kiosks = [Kiosk(t, connection) for t in terminals]

    def session(i: int):  # type: ignore[no-untyped-def]
        card = make_card()  # one card per session: a card serves one reader at a time
        with InProcessTransport(card) as transport:
            return kiosks[i % len(kiosks)].issue(transport, "1234", CHOICE, print_to=tmp_path / f"{i}.pdf")

    with Responder(cluster.bootstrap_servers, group_id, topics) as responder, ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(session, range(80)))
    assert [o.status for o in outcomes] == [OutcomeStatus.ISSUED] * 80, {o.reason_code for o in outcomes}
    for i, outcome in enumerate(outcomes):
        assert outcome.printed_to == tmp_path / f"{i}.pdf"
        assert outcome.printed_to.read_bytes() == b"%PDF-1.7 " + outcome.request_id.encode()  # type: ignore[union-attr]
        assert outcome.certificate_ids == (outcome.request_id,)
        assert outcome.latency is not None and outcome.latency > 0
    assert len({o.request_id for o in outcomes}) == 80
    assert responder.answered == 80
    assert connection.router.counters.delivered == 80 and connection.router.waiting == 0


def test_router_ignores_answers_to_other_kiosks_and_times_out_cleanly(
        cluster: ClusterHandle, topics: KioskTopics, make_card: Callable[..., JpkiCard]) -> None:
    registry = FileSchemaRegistry()
    responses = AvroSerde(registry, CONTRACTS[KIOSK_RESPONSES])
    producer = make_producer(cluster.bootstrap_servers)
    old = {"request_id": "answered-before-the-kiosk-started", "status": "REFUSED",
           "responded_at": dt.datetime.now(dt.UTC)}
    producer.produce(topics.responses, responses.encode(old), old["request_id"].encode())
    producer.flush(10)
    with KioskConnection(cluster.bootstrap_servers, registry, topics=topics, response_timeout=1.5) as conn:
        stranger = {"request_id": "another-kiosk-process", "status": "REFUSED",
                    "responded_at": dt.datetime.now(dt.UTC)}
        producer.produce(topics.responses, responses.encode(stranger), stranger["request_id"].encode())
        producer.flush(10)
        with InProcessTransport(make_card()) as transport:
            outcome = Kiosk(TERMINAL, conn).issue(transport, "1234", CHOICE)
        assert outcome.status is OutcomeStatus.NO_RESPONSE and outcome.sent
        assert "返金" in outcome.message
        assert conn.router.counters.received == 1  # the stranger; the older answer was before the start
        assert conn.router.counters.unclaimed == 1 and conn.router.waiting == 0
    sent = read_topic(cluster.bootstrap_servers, topics.requests)
    assert [m.key().decode() for m in sent] == [outcome.request_id]
