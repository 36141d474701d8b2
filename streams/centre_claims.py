"""Exactly once across the two issuing centres: the claims log (bcl.kiosk.claims) and who answers a request.

A kiosk whose centre stops answering sends the same request (same request id, same signed bytes) to the other
centre, so both centres' workers may answer one request id; each worker's request ledger
(streams.request_ledger) is local to its centre. The ledger is therefore replicated through Kafka: before it
emits anything, a worker in centre mode produces each claim of its batch to bcl.kiosk.claims, keyed by request
id, with everything the claim will emit (the response with the PDF, the CertificateIssued messages, the
archive's front rasters) in the message and its headers, and reads the log back up to its own claim.

The first claim of a request id in its partition decides the request (a partition has one leader: in the
stretched cluster of infra/production/centres, min.insync.replicas=2 over both centres and unclean leader
election off, an acknowledged claim is in both centres and no two leaders take writes for it):
- the first claim is this worker's: it emits it, as before;
- another worker's claim is first and its response is already on bcl.kiosk.responses: this worker emits nothing
  (the kiosk, which waits for the request id whichever centre answers, has the answer);
- another worker's claim is first and no response of it is out yet (that centre was lost between its claim and
  its answer): this worker emits *that* claim's bytes, the one answer, byte for byte;
- the first claim is the kiosk's withdrawal (domain.request_claims: the kiosk gave up waiting and refunded the
  resident): this worker emits nothing, no response and no CertificateIssued, so nothing is billed or counted.
So a request id is decided once; its answer and its certificates (ids uuid5 of request id and copy) are the
first claim's whatever centre emits them. The same bytes can go out twice only when the first claimant was
slower than the other centre's whole decide-render-claim (it is alive but was not answering): the kiosk takes
the first response of a request id, billing counts a certificate id once (sinks.certificate_ledger), the archive
takes the same bytes again, so nothing is issued or billed twice.

Why Kafka and not a shared database: the claims log lives in the cluster that is already stretched over both
centres with synchronous replication, so it needs no second replicated store, it fails over with the brokers,
and its order is the arbitration. Its cost: each answer's bytes are written twice (claim, response) and each
worker reads both centres' claims and responses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Message

from domain.issuing_centres import CENTRE_HEADER, require_centre
from domain.request_claims import STATUS_HEADER, WITHDRAWN
from infra.metrics import Totals
from infra.processor_runtime import BatchHandler, LoopOptions, Partitions, ProcessorRuntime, Source, Start
from infra.topics import ANSWER_RETENTION
from streams.request_ledger import Claim, ClaimKey, IssuedMessage

_STATUS = STATUS_HEADER
_ISSUED_AT = "bcl-issued-at"
_MUNICIPALITY = "bcl-municipality"
_CERTIFICATE = "bcl-certificate-id"
_ISSUED_KEY = "bcl-issued-key"
_ISSUED = "bcl-issued"
_FRONT = "bcl-front"

Headers = list[tuple[str, bytes]]


def centre_group_id(centre: str) -> str:
    """The consumer group of a centre's certificate worker (streams.certificate_worker.PROCESSOR + the centre)."""
    return f"certificate-worker-{require_centre(centre).lower()}"


def claim_message(claim: Claim, centre: str, claim_header: bytes, request_header: str) -> tuple[bytes, Headers]:
    """The claim as the value and headers of its bcl.kiosk.claims message (key: the request id)."""
    headers: Headers = [(request_header, claim_header), (CENTRE_HEADER, centre.encode()),
                        (_STATUS, claim.status.encode())]
    if claim.issued_at is not None:
        headers.append((_ISSUED_AT, repr(claim.issued_at).encode()))
    if claim.municipality_code is not None:
        headers.append((_MUNICIPALITY, claim.municipality_code.encode()))
    for m in claim.issued:
        headers += [(_CERTIFICATE, m.certificate_id.encode()), (_ISSUED_KEY, m.key), (_ISSUED, m.value)]
    headers += [(_FRONT, png) for png in claim.fronts]
    return claim.response, headers


@dataclass(frozen=True)
class FirstClaim:
    """The claim that decides a request id: who made it, and what it emits (None once its response is out, and for
    a kiosk's withdrawal, which emits nothing)."""

    claim_header: bytes
    centre: str
    answer: Claim | None
    seen_at: float
    withdrawn: bool = False


def _answer_of(msg: Message, request_header: str) -> tuple[bytes, str, Claim]:
    headers = [(k, v or b"") for k, v in (msg.headers() or [])]
    first: dict[str, bytes] = {}
    for k, v in headers:
        first.setdefault(k, v)
    ids = [v.decode() for k, v in headers if k == _CERTIFICATE]
    keys = [v for k, v in headers if k == _ISSUED_KEY]
    values = [v for k, v in headers if k == _ISSUED]
    issued_at = first.get(_ISSUED_AT)
    municipality = first.get(_MUNICIPALITY)
    request_id = (msg.key() or b"").decode()
    # The position and origin are the claimant's; whoever emits the answer records it under its own claim key.
    answer = Claim(("", 0, 0), request_id, first.get(_STATUS, b"").decode(), msg.key() or b"", msg.value() or b"",
                   tuple(IssuedMessage(c, k, v) for c, k, v in zip(ids, keys, values, strict=True)),
                   float(issued_at) if issued_at else None, municipality.decode() if municipality else None,
                   tuple(v for k, v in headers if k == _FRONT))
    return first.get(request_header, b""), first.get(CENTRE_HEADER, b"").decode(), answer


class ClaimsIndex(BatchHandler):
    """Follows bcl.kiosk.claims and bcl.kiosk.responses from the beginning (a thread, no commit): the first claim of
    every request id, and which request ids have a response out. Entries are dropped after the answers' retention
    (by then a replay is refused as expired anyway)."""

    def __init__(self, name: str, bootstrap_servers: str, claims_topic: str, responses_topic: str,
                 request_header: str, stop: threading.Event) -> None:
        self._claims_topic = claims_topic
        self._request_header = request_header
        self._stop = stop
        self._first: dict[str, FirstClaim] = {}
        self._answered: dict[str, float] = {}
        self._read_to: dict[tuple[str, int], int] = {}  # next offset to read, per partition
        self._changed = threading.Condition()
        self.caught_up = threading.Event()
        self.error: BaseException | None = None
        self._pruned_at = time.monotonic()
        self._runtime = ProcessorRuntime(name, bootstrap_servers, Source((claims_topic, responses_topic),
                                                                         Start.BEGINNING), self,
                                         LoopOptions(batch_size=500, poll_timeout=0.1, low_latency=True,
                                                     commit=False),
                                         consumer_config={"enable.partition.eof": True, "fetch.wait.max.ms": 10})
        self._thread = threading.Thread(target=self._run, name=f"{name}-thread", daemon=True)

    def start(self) -> ClaimsIndex:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with self._runtime as runtime:
                runtime.run(self._stop)
        except BaseException as exc:  # surfaced to the worker, which stops
            self.error = exc
            self.caught_up.set()
            with self._changed:
                self._changed.notify_all()

    # -- the handler -----------------------------------------------------------------------------

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        now = time.monotonic()
        with self._changed:
            for msg in messages:
                request_id = (msg.key() or b"").decode(errors="replace")
                if msg.topic() == self._claims_topic:
                    if request_id not in self._first:
                        header, centre, answer = _answer_of(msg, self._request_header)
                        withdrawn = answer.status == WITHDRAWN
                        done = withdrawn or request_id in self._answered
                        self._first[request_id] = FirstClaim(header, centre, None if done else answer, now,
                                                             withdrawn)
                else:
                    self._answered.setdefault(request_id, now)
                    first = self._first.get(request_id)
                    if first is not None and first.answer is not None:
                        self._first[request_id] = FirstClaim(first.claim_header, first.centre, None, first.seen_at,
                                                             first.withdrawn)
                self._read_to[(msg.topic(), msg.partition())] = msg.offset() + 1
            if now - self._pruned_at > 60:
                self._prune(now)
            self._changed.notify_all()

    def on_caught_up(self, now: float) -> None:
        self.caught_up.set()

    def totals(self) -> Totals:
        return Totals(len(self._first))

    def _prune(self, now: float) -> None:
        cutoff = now - ANSWER_RETENTION.total_seconds()
        self._first = {r: f for r, f in self._first.items() if f.seen_at >= cutoff}
        self._answered = {r: t for r, t in self._answered.items() if t >= cutoff}
        self._pruned_at = now

    # -- questions -------------------------------------------------------------------------------

    def wait_read(self, positions: Sequence[tuple[str, int, int]], timeout: float) -> None:
        """Return once every (topic, partition, offset) given has been read (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(self._read_to.get((t, p), 0) > o for t, p, o in positions):
                if self.error is not None:
                    raise self.error
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    raise TimeoutError(f"the claims log was not read up to {len(positions)} new claims in time")
                self._changed.wait(min(left, 0.5))

    def first(self, request_id: str) -> FirstClaim | None:
        with self._changed:
            return self._first.get(request_id)

    def answered(self, request_id: str) -> bool:
        with self._changed:
            return request_id in self._answered


@dataclass(frozen=True)
class Arbitrated:
    """A batch's claims split by what the first claim of each request id says."""

    emit: list[Claim]  # this worker's own, or another worker's answer not out yet (under this claim's key)
    superseded: list[Claim]  # decided and answered by another worker: nothing to emit
    withdrawn: list[Claim]  # withdrawn by the kiosk first: nothing to emit, ever


def arbitrate(claims: Sequence[Claim], own_header: Callable[[ClaimKey], bytes], index: ClaimsIndex) -> Arbitrated:
    """Split the claims (each already in the claims log and read back) by what the first claim of their request id
    says: this worker's own (emit it), another's already answered (emit nothing), another's not answered yet
    (emit that answer under this claim's key), the kiosk's withdrawal (emit nothing)."""
    emit: list[Claim] = []
    superseded: list[Claim] = []
    withdrawn: list[Claim] = []
    for c in claims:
        first = index.first(c.request_id)
        if first is not None and first.withdrawn:
            withdrawn.append(c)
        elif first is None or first.claim_header == own_header(c.key):
            emit.append(c)
        elif first.answer is None:
            superseded.append(c)
        else:
            a = first.answer
            emit.append(Claim(c.position, c.request_id, a.status, a.response_key, a.response, a.issued, a.issued_at,
                              a.municipality_code, a.fronts, c.origin))
    return Arbitrated(emit, superseded, withdrawn)
