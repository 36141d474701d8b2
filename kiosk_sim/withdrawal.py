"""The kiosk as a claimant (domain.request_claims): a kiosk that gives up waiting withdraws its request on
bcl.kiosk.claims, then learns which claim of the request id came first.

Why: a kiosk that gives up refunds the resident. Without a withdrawal, a worker that was only late (its claim
partition out of reach during a cut between the centres, a slow renderer, the request delivered late by the kiosk's
own producer) still decides the request afterwards and issues it, billed to the municipality, to nobody. With it,
the claims log decides between the kiosk and the workers exactly as it decides between the two centres: the first
claim of the request id in its partition.

- Before sending a request, the kiosk reads the end offset of the request id's claims partition (`Withdrawals.mark`):
  every claim of the request comes after it, since nobody can claim a request before it is sent. Reading it costs
  one round trip to the partition's leader per request; a kiosk that cannot read it does not send (it could not
  withdraw what it sent).
- Giving up (`Withdrawals.settle`): the kiosk produces its WITHDRAWN claim to that partition (acks=all, like every
  claim) and waits until it is acknowledged, then reads the partition from the mark up to its withdrawal. The first
  claim of the request id there decides: a worker's claim carries that worker's response (the claim's value is the
  response it emits, byte for byte), which the kiosk takes as the answer: the resident is served, nothing is
  refunded; its own withdrawal means every worker answers and issues nothing, and the kiosk refunds.
- Until the withdrawal is acknowledged and the partition read up to it, the request is undecided for the kiosk: it
  neither refunds nor prints, tells the resident to wait (MESSAGE_CONFIRMING in kiosk_sim.kiosk) and tries again
  every `retry_every` seconds, for as long as it takes.
- With a file of undecided requests (kiosk_sim.undecided_requests), each mark is saved before its request is sent and
  deleted once the session is settled, so that a kiosk process that dies in between settles it when it restarts.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from domain.issuing_centres import CENTRE_HEADER
from domain.request_claims import KIOSK_HEADER, STATUS_HEADER, WITHDRAWN, claim_partition
from infra.kafka import make_consumer, produce
from kiosk_sim.errors import KioskSimError
from kiosk_sim.undecided_requests import UndecidedRequests


class ClaimsUnreachable(KioskSimError):
    """The request id's claims partition cannot be read now (its leader is out of reach)."""


@dataclass(frozen=True, slots=True)
class ClaimMark:
    """Where the claims of a request id can start: its partition, and the partition's end before it was sent."""

    request_id: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class FirstClaim:
    """The claim that decided a request the kiosk withdrew: its own withdrawal, or a worker's claim with the
    response that worker emits (its value) and the worker's centre."""

    withdrawn: bool
    response: bytes = b""
    centre: str | None = None


class Withdrawals:
    """A kiosk process's claims on bcl.kiosk.claims: marks before sending, withdrawals when giving up. Shares the
    kiosk connection's producer (polled by it) and is shared by its terminals."""

    def __init__(self, bootstrap_servers: str, producer: Producer, topic: str, *, retry_every: float = 1.0,
                 undecided: UndecidedRequests | None = None) -> None:
        self._bootstrap_servers = bootstrap_servers
        self.undecided = undecided
        self._producer = producer
        self._topic = topic
        self.retry_every = retry_every
        # Only for end offsets and metadata: never subscribes, never commits.
        self._offsets = make_consumer(bootstrap_servers, f"bcl-kiosk-claims-{uuid.uuid4().hex[:12]}")
        self._partitions = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._offsets.close()
        if self.undecided is not None:
            self.undecided.close()

    def _partition_count(self, timeout: float) -> int:
        with self._lock:
            if not self._partitions:
                try:
                    topic = self._offsets.list_topics(self._topic, timeout=timeout).topics.get(self._topic)
                except KafkaException as exc:
                    raise ClaimsUnreachable(f"cannot read the partitions of {self._topic}: {exc}") from exc
                if topic is None or topic.error is not None or not topic.partitions:
                    raise ClaimsUnreachable(f"the claims topic {self._topic} is not there")
                self._partitions = len(topic.partitions)
            return self._partitions

    def mark(self, request_id: str, kiosk_id: str, timeout: float) -> ClaimMark:
        """Before sending: the end offset of the request id's claims partition (ClaimsUnreachable if unreadable),
        saved in the file of undecided requests if there is one."""
        deadline = time.monotonic() + timeout
        partition = claim_partition(request_id, self._partition_count(timeout))
        while True:
            try:
                _low, high = self._offsets.get_watermark_offsets(TopicPartition(self._topic, partition),
                                                                 timeout=max(0.1, deadline - time.monotonic()))
                break
            except KafkaException as exc:
                # librdkafka answers a leader that just moved or went down at once with an error, without asking
                # the new one: ask again (its metadata refresh finds the new leader) until the time-out.
                if time.monotonic() >= deadline:
                    raise ClaimsUnreachable(f"cannot read the end of {self._topic} [{partition}]: {exc}") from exc
                time.sleep(0.1)
        if self.undecided is not None:
            self.undecided.add(request_id, kiosk_id, partition, high)
        return ClaimMark(request_id, partition, high)

    def settled(self, mark: ClaimMark) -> None:
        """The session of the marked request has ended: a restart has nothing to withdraw."""
        if self.undecided is not None:
            self.undecided.settled(mark.request_id)

    def settle(self, mark: ClaimMark, kiosk_id: str, withdrawal: bytes) -> FirstClaim:
        """Withdraw the request (`withdrawal`: the CertificateResponse WITHDRAWN that is the claim's value) and
        return the first claim of its request id. Blocks, retrying, until both are done."""
        offset = self._withdraw(mark, kiosk_id, withdrawal)
        while True:
            try:
                return self._first_claim(mark, offset)
            except ClaimsUnreachable:
                time.sleep(self.retry_every)

    def _withdraw(self, mark: ClaimMark, kiosk_id: str, withdrawal: bytes) -> int:
        """Produce the withdrawal until it is acknowledged; its offset. A second withdrawal of the same request id
        (a retry after a failed delivery that was written after all) changes nothing: only the first claim counts."""
        headers = [(STATUS_HEADER, WITHDRAWN.encode()), (KIOSK_HEADER, kiosk_id.encode())]
        while True:
            done = threading.Event()
            result: list[tuple[KafkaError | None, int]] = []

            def delivered(err: KafkaError | None, msg: Message, result: list[tuple[KafkaError | None, int]] = result,
                          done: threading.Event = done) -> None:
                result.append((err, msg.offset() if err is None else -1))
                done.set()

            produce(self._producer, self._topic, withdrawal, mark.request_id.encode(), partition=mark.partition,
                    headers=headers, on_delivery=delivered)
            # librdkafka retries an unreachable partition itself until message.timeout.ms: wait for its verdict.
            done.wait()
            err, offset = result[0]
            if err is None:
                return offset
            time.sleep(self.retry_every)

    def _first_claim(self, mark: ClaimMark, withdrawal_offset: int) -> FirstClaim:
        """Read the partition from the mark to the withdrawal: the first claim of the request id."""
        consumer = make_consumer(self._bootstrap_servers, f"bcl-kiosk-withdrawal-{uuid.uuid4().hex[:12]}",
                                 **{"auto.offset.reset": "error", "fetch.wait.max.ms": 10})
        try:
            consumer.assign([TopicPartition(self._topic, mark.partition, mark.offset)])
            key = mark.request_id.encode()
            deadline = time.monotonic() + max(5.0, 10 * self.retry_every)
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if err.code() == KafkaError._AUTO_OFFSET_RESET:
                        # The claims after the mark are no longer in the log: the first one cannot be known.
                        raise KioskSimError(f"the claims of request {mark.request_id} were trimmed from "
                                            f"{self._topic} [{mark.partition}] before the kiosk read them")
                    continue  # a broker out of reach: librdkafka retries, and so does the deadline's caller
                if msg.key() != key:
                    continue
                headers = {k: v or b"" for k, v in reversed(msg.headers() or [])}  # the first of each name
                if headers.get(STATUS_HEADER) == WITHDRAWN.encode():
                    return FirstClaim(True)
                centre = headers.get(CENTRE_HEADER)
                return FirstClaim(False, msg.value() or b"", centre.decode() if centre else None)
            raise ClaimsUnreachable(f"{self._topic} [{mark.partition}] was not read up to offset {withdrawal_offset}")
        finally:
            consumer.close()
