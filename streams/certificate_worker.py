"""The certificate worker: bcl.kiosk.requests → bcl.kiosk.responses + bcl.certificates.issued.

Per request: the replay guard, then one pure decision (domain.issuance_decision) over ports bound to
this worker's state: every field's limits (domain.kiosk_request, before any side effect), service hours
and maintenance, the card (freshness, chain to the JPKI-TEST root, validity, the signature over the
BCL-KIOSK-v2 challenge, which covers every field of the request), revocation (CRL by default: the daily
CRL of the PKI directory plus every revocation seen on bcl.jpki.revocations; OCSP by configuration),
the certificate type, the resident found by certificate serial in the materialised backup
(streams.resident_directory; two current records with the serial are refused, never guessed between),
eligibility, fee and payment. An issued request is rendered and sealed (streams.certificate_rendering,
in a pool of processes), archived (sinks.issuance_archive), answered with the PDF inline, and produces
one CertificateIssued per copy.
Every refusal is answered too, with a reason code and a message the kiosk shows.

No message can stop the worker: an unreadable one is dead-lettered; a failure while deciding,
rendering, answering or archiving one request (also when completing a claim after a restart) refuses
that request (ISSUE_FAILED, the kiosk refunds) and the loop goes on. A request whose rendering kills the
renderer process (not an exception: a segfault, the OOM killer) is found by rendering the lost jobs
again one at a time, each alone (streams.certificate_rendering), and refused too. Only what is not the
message's doing stops it (the cluster, the ledger's disk, a renderer that dies on every request), and a
restart carries on.

Exactly once, across crashes and restarts: see streams.request_ledger. The embedded cluster's
Kafka transactions are not real (offsets are not committed with the transaction, read_committed
does not hide aborted messages, no fencing), so the worker does not use them; it claims each batch
in a local ledger with the bytes it will emit, then emits, then marks the batch delivered and
commits offsets; a restart completes what is in doubt without emitting anything twice.
One worker process per ledger: it consumes every request partition (no group membership, so a
restart resumes at once); CPU parallelism comes from the renderer processes.

Latency: the loop blocks for the first request, then takes whatever else is already there (up to
batch_size) without waiting, so a lone request is answered at once and a burst is batched.
Two batches are in flight at a time: while one waits for its renders and is claimed, emitted and
committed, the next is already decided and queued at the renderers, so the renderer processes do
not idle while the worker process writes the ledger, the archive and Kafka. Batches are claimed,
emitted and committed strictly in order; a batch that is only decided has emitted nothing (but
dead letters) and is decided again after a crash.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import Message, Producer
from cryptography import x509

from certgen.card_trust import REVOCATION_MODES, CardTrust
from certgen.certificate_document import LAID_OUT_TYPES, ResidentCopyOptions
from certgen.pki_directory import PkiDirectory
from certgen.revocation import Revocation, merge_revocation, revocation_from_record
from domain.disaster_certificate import HouseholdDisasterFacts
from domain.issuance_decision import IssuancePolicy, Issue, Lookups, decide
from domain.issuing_centres import CENTRE_HEADER, require_centre
from domain.kiosk_rules import ReasonCode, Refusal, Resident, refusal
from domain.request_claims import claim_partition
from infra import kafka, metrics, topics
from infra.crash_points import crash_point
from infra.metrics import Totals
from infra.processor_runtime import BatchHandler, Done, LoopOptions, Output, Partitions, ProcessorRuntime, Source, Start
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from sinks.household_facts import HouseholdFactsReader
from sinks.issuance_archive import IssuanceArchive, IssuanceArchiveError
from sinks.snapshot_store import BaseSnapshotStore
from streams.centre_claims import ClaimsIndex, FirstClaim, arbitrate, claim_message
from streams.certificate_rendering import (
    RENDER_TIME_LIMIT_SECONDS,
    RenderedCertificate,
    RendererKilledError,
    RenderersBrokenError,
    RenderJob,
    RenderPool,
    issuer_for,
)
from streams.dead_letters import DeadLetterSink
from streams.disaster_facts import DisasterFactsIndex
from streams.request_ledger import Claim, ClaimKey, IssuedMessage, Position, RequestLedger, Seen, origin_of
from streams.resident_directory import ResidentDirectory, audit_reads, key_of

log = structlog.get_logger("certificate_worker")

PROCESSOR = "certificate-worker"
CERTIFICATE_ID_NAMESPACE = uuid.UUID("6d1f3c2e-7b0a-5c4e-9a51-2b8f0e4d7c13")
REQUEST_HEADER = "bcl-request"  # on responses: the claim key of the message answered (_claim_header)
CERTIFICATE_HEADER = "bcl-certificate-id"  # on CertificateIssued events
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a response carries the PDF (0.3-0.6 MB, more with many copies)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def certificate_id(request_id: str, copy_number: int) -> str:
    """Deterministic: a re-processed request can never mint a second id for the same copy."""
    return str(uuid.uuid5(CERTIFICATE_ID_NAMESPACE, f"{request_id}/{copy_number}"))


@dataclass(frozen=True)
class WorkerTopics:
    """Where the worker reads and writes; the catalogue's topics unless a test isolates itself."""

    requests: str = topics.KIOSK_REQUESTS
    responses: str = topics.KIOSK_RESPONSES
    issued: str = topics.CERTIFICATES_ISSUED
    residents: str = topics.RESIDENTS
    revocations: str = topics.JPKI_REVOCATIONS
    disasters: str = topics.DISASTER_EVENTS
    dlq: str = topics.DLQ
    claims: str = topics.KIOSK_CLAIMS  # with a centre: the claims replicated between the centres


@dataclass(frozen=True)
class WorkerOptions:
    revocation: str = "crl"  # "crl" or "ocsp"
    ocsp_url: str | None = None  # None: the responder named in each certificate (AIA)
    render_processes: int = 0  # 0: render in the worker process
    render_time_limit: float = RENDER_TIME_LIMIT_SECONDS  # a render not done by then is a hung renderer
    back_side: bool = True
    batch_size: int = 4  # small: a batch is answered when its slowest render is done
    poll_timeout: float = 0.2
    policy: IssuancePolicy = field(default_factory=IssuancePolicy)  # what the decision applies
    # The issuing centre this worker runs in (EAST, WEST): it answers the requests sent to it and arbitrates
    # every claim with the other centre's through the claims log (streams.centre_claims). None: one site, every
    # request, no claims log.
    centre: str | None = None

    def __post_init__(self) -> None:
        if self.revocation not in REVOCATION_MODES:
            raise ValueError(f"revocation mode must be crl or ocsp, got {self.revocation!r}")
        if self.centre is not None:
            require_centre(self.centre)


@dataclass
class Counters:
    consumed: int = 0
    issued: int = 0  # requests answered with a certificate
    certificates: int = 0  # CertificateIssued events (one per copy)
    refused: int = 0
    redelivered: int = 0  # already answered before a restart: skipped
    recovered: int = 0  # in-doubt requests completed at start
    dead_lettered: int = 0
    renderer_killed: int = 0  # refused: rendering the request alone killed the renderer process
    other_centre: int = 0  # sent to the other centre: not this worker's
    superseded: int = 0  # decided by the other centre's claim, already answered: nothing emitted
    took_over: int = 0  # decided by the other centre's claim, not answered yet: its answer emitted from here
    withdrawn: int = 0  # withdrawn by its kiosk before any worker's claim: nothing emitted
    refusals: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "refusals"}
        out["refusals"] = dict(self.refusals)
        return out


@dataclass
class _Pending:
    """One request of the batch being processed."""

    msg: Message
    position: Position
    origin: str  # with the position, what tells this message from a replay at its offset on a new cluster
    request: dict[str, Any]
    received: float
    refusal: Refusal | None = None
    issue: Issue | None = None  # the decision, when the request passed every rule
    job: RenderJob | None = None
    future: Future[RenderedCertificate] | None = None
    ledger_reads: int = 0  # the disaster ledger rows read for it (a row per disaster asked), audited


@dataclass(frozen=True)
class _Batch:
    """A batch decided and handed to the renderers, waiting to be completed."""

    messages: list[Message]
    pending: list[_Pending]
    now: dt.datetime
    received: float
    decided: float
    dead_lettered: bool  # dead letters were sent: flush them before the offsets are committed
    request_ids: frozenset[str]


@dataclass(frozen=True)
class _Emitted:
    """A batch claimed and emitted, to be marked delivered and committed at the checkpoint; with stage times."""

    batch: _Batch
    claims: list[Claim]
    waiting: float
    rendered: float
    claimed: float
    emitted: float
    withdrawn: frozenset[str] = frozenset()  # request ids whose kiosk's withdrawal was first: nothing emitted


class _Serving(BatchHandler):
    """The request loop, as a handler of infra.processor_runtime. Two batches in flight: a polled batch is
    decided and handed to the renderers, then the previous one is waited for, claimed and emitted; the
    checkpoint that follows marks that one delivered and commits its offsets (strictly in order)."""

    def __init__(self, worker: CertificateWorker, feed: _Feed, ledger: RequestLedger, dead_letters: DeadLetterSink,
                 pool: RenderPool, producer: Producer, archiver: ThreadPoolExecutor) -> None:
        self._worker = worker
        self._feed = feed
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._pool = pool
        self._producer = producer
        self._archiver = archiver
        self._in_flight: _Batch | None = None
        self._completing: _Emitted | None = None

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        if self._feed.error is not None:
            raise self._feed.error
        started = None
        if messages:
            started = self._worker._start_batch(messages, self._ledger, self._dead_letters, self._pool,
                                                self._in_flight.request_ids if self._in_flight else frozenset())
        self._complete_in_flight()
        self._in_flight = started

    def busy(self) -> bool:
        # With a batch in flight, only take what is already there: it must not wait on an idle topic.
        return self._in_flight is not None

    def checkpoint_due(self, now: float, polled: int) -> bool:
        return self._completing is not None

    def write_sink(self) -> Done:
        if self._completing is None:
            return ()
        emitted = self._completing
        if emitted.claims:
            self._worker._audit(emitted.batch.pending)
            self._ledger.mark_delivered([c.key for c in emitted.claims], self._worker._take_marks())
            crash_point("worker.before_commit")
        return emitted.batch.messages

    def committed(self) -> None:
        if self._completing is not None:
            self._worker._log_batch(self._completing, time.monotonic())
            self._completing = None

    def drain(self) -> None:
        self._complete_in_flight()
        self._in_flight = None

    def totals(self) -> Totals:
        counters = self._worker.counters
        return Totals(counters.issued + counters.refused, counters.dead_lettered)

    def _complete_in_flight(self) -> None:
        if self._in_flight is not None:
            self._completing = self._worker._emit_batch(self._in_flight, self._ledger, self._dead_letters,
                                                        self._pool, self._producer, self._archiver)


class _Feed(threading.Thread):
    """Keeps the resident directory, the revocation registry and the open disasters current from
    bcl.residents, bcl.jpki.revocations and bcl.disaster.events (from the beginning: the compacted topics
    hold the latest state, the disaster events are retained; no commit)."""

    def __init__(self, worker: CertificateWorker, stop: threading.Event) -> None:
        super().__init__(name="certificate-worker-feed", daemon=True)
        self._worker = worker
        self._stop_event = stop
        self.caught_up = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        w = self._worker
        handler = _FeedHandler(w._apply_feed, self.caught_up)
        try:
            with ProcessorRuntime(f"{w.group_id}.feed", w.bootstrap_servers,
                                  Source((w.topics.residents, w.topics.revocations, w.topics.disasters),
                                         Start.BEGINNING), handler,
                                  LoopOptions(batch_size=5000, poll_timeout=0.2, commit=False)) as runtime:
                runtime.run(self._stop_event)
        except BaseException as exc:  # surfaced to the worker loop, which stops
            self.error = exc
            self.caught_up.set()


class _FeedHandler(BatchHandler):
    def __init__(self, apply: Callable[[Message], None], caught_up: threading.Event) -> None:
        self._apply = apply
        self._caught_up = caught_up
        self._applied = 0

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        for msg in messages:
            try:
                self._apply(msg)
            except Exception as exc:  # one bad record must not stop the feed, hence the worker, at every restart
                log.error("feed_record_skipped", topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
                          error=f"{type(exc).__name__}: {exc}")
        self._applied += len(messages)

    def on_caught_up(self, now: float) -> None:
        self._caught_up.set()

    def totals(self) -> Totals:
        return Totals(self._applied)


class _HeaderScan(BatchHandler):
    """The recovery scan's reader: the values of one header in every message."""

    def __init__(self, header: str) -> None:
        self._header = header
        self.values: list[bytes] = []

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        for msg in messages:
            self.values += [v for k, v in (msg.headers() or []) if k == self._header and v is not None]


@dataclass(frozen=True)
class WorkerResources:
    """What the worker reads and writes besides Kafka (the composition root, streams.platform, fills it in
    from the settings)."""

    store: BaseSnapshotStore  # the backup: the resident directory is loaded from it at start
    pki: PkiDirectory  # the JPKI-TEST root, the CRL, the municipal seal credentials
    font_path: Path
    scramble_key_secret: str = field(repr=False)
    audit_file: Path  # every read of personal data is recorded
    ledger_path: Path  # the request ledger (streams.request_ledger)
    archive_dir: Path  # the issuance archive (sinks.issuance_archive)
    disaster_store_file: Path  # the disaster store: its ledgers and surveys, read-only (sinks.household_facts)


class CertificateWorker:
    def __init__(
        self,
        bootstrap_servers: str,
        registry: BaseSchemaRegistry,
        resources: WorkerResources,
        *,
        topic_names: WorkerTopics = WorkerTopics(),
        group_id: str = PROCESSOR,
        options: WorkerOptions = WorkerOptions(),
        clock: Clock = utc_now,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topic_names
        self.group_id = group_id
        self.options = options
        self.counters = Counters()
        self.directory = ResidentDirectory()
        # Disasters from bcl.disaster.events (the feed); households in their ledgers read from the disaster store.
        self.disaster_facts = DisasterFactsIndex()
        self._households = HouseholdFactsReader(resources.disaster_store_file)
        self._deciding: _Pending | None = None  # the request being decided, for _read_household's audit count
        self._registry = registry
        self._store = resources.store
        self._pki = pki = resources.pki
        self._font_path = resources.font_path
        self._audit_file = resources.audit_file
        self._ledger_path = resources.ledger_path
        self._archive = IssuanceArchive(resources.archive_dir)
        self._secret = resources.scramble_key_secret
        self._clock = clock
        self._requests = AvroSerde(registry, CONTRACTS[topics.KIOSK_REQUESTS])
        self._responses = AvroSerde(registry, CONTRACTS[topics.KIOSK_RESPONSES])
        self._issued = AvroSerde(registry, CONTRACTS[topics.CERTIFICATES_ISSUED])
        self._residents = AvroSerde(registry, CONTRACTS[topics.RESIDENTS])
        self._revocations_serde = AvroSerde(registry, CONTRACTS[topics.JPKI_REVOCATIONS])
        self._disaster_events = AvroSerde(registry, CONTRACTS[topics.DISASTER_EVENTS])
        self._revoked: dict[str, Revocation] = {}
        self._revoked_lock = threading.Lock()
        self._trust = CardTrust(pki, revocation=options.revocation, ocsp_url=options.ocsp_url, clock=clock)
        self._sealed: set[str] = set()
        self._delivered = kafka.DeliveryTracker()
        self._marks: dict[tuple[str, int], int] = {}
        self._cluster_id: str | None = None  # the request topic's cluster, read when serving starts
        self._request_seconds = metrics.REQUEST_SECONDS.labels(group_id)
        self._claims_index: ClaimsIndex | None = None  # with a centre, while serving
        self._claim_partitions = 0  # with a centre: the claims topic's partition count, read when serving starts

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, ready: threading.Event | None = None) -> Counters:
        """Serve until `stop` is set. `ready` is set once the state is loaded and requests are served."""
        stop = stop or threading.Event()
        started = time.monotonic()
        loaded = self.directory.load_snapshot(self._store)
        pool = RenderPool(self.options.render_processes, self._font_path, self._pki.path,
                          self._pki.endpoints.base_url, self._secret, back_side=self.options.back_side,
                          time_limit=self.options.render_time_limit)
        feed = _Feed(self, stop)
        feed.start()
        # Its own stop: the batch in flight when the worker stops is still arbitrated (drained) after `stop`.
        index_stop = threading.Event()
        if self.options.centre is not None:
            self._claims_index = ClaimsIndex(f"{self.group_id}.claims", self.bootstrap_servers, self.topics.claims,
                                             self.topics.responses, REQUEST_HEADER, index_stop).start()
        ledger = RequestLedger(self._ledger_path)
        producer = kafka.make_producer(self.bootstrap_servers,
                                       **{"linger.ms": 1, "message.max.bytes": MAX_MESSAGE_BYTES})
        dead_letters = DeadLetterSink(producer, self._registry, PROCESSOR, self._on_delivery, topic=self.topics.dlq)
        metadata = producer.list_topics(timeout=10)
        self._cluster_id = metadata.cluster_id
        if self.options.centre is not None:
            claims_topic = metadata.topics.get(self.topics.claims)
            if claims_topic is None or not claims_topic.partitions:
                raise kafka.KafkaClientError(f"the claims topic {self.topics.claims} does not exist")
            self._claim_partitions = len(claims_topic.partitions)
        archiver = ThreadPoolExecutor(4, thread_name_prefix="archive")
        runtime: ProcessorRuntime | None = None
        try:
            index = self._claims_index
            while not (feed.caught_up.wait(0.2) and (index is None or index.caught_up.wait(0.2))):
                if stop.is_set():
                    return self.counters
            if feed.error is not None:
                raise feed.error
            if index is not None and index.error is not None:
                raise index.error
            self._recover(ledger, producer, archiver)
            ledger.prune()
            serving = _Serving(self, feed, ledger, dead_letters, pool, producer, archiver)
            runtime = ProcessorRuntime(
                self.group_id, self.bootstrap_servers, Source((self.topics.requests,)), serving,
                LoopOptions(batch_size=self.options.batch_size, poll_timeout=self.options.poll_timeout,
                            low_latency=True),
                output=Output(producer, self._delivered, "responses or issued events",
                              "the batch is in doubt and will be completed from the ledger at restart"),
                # The broker would otherwise hold each fetch up to 500 ms before answering: latency.
                consumer_config={"enable.partition.eof": False, "fetch.wait.max.ms": 10},
            )
            runtime.assign()
            log.info("ready", residents_from_snapshot=loaded, residents=len(self.directory),
                     revocations=len(self._revoked), render_processes=pool.processes,
                     revocation_mode=self.options.revocation, startup_s=round(time.monotonic() - started, 2))
            if ready is not None:
                ready.set()
            runtime.run(stop)
        finally:
            stop.set()
            if runtime is not None:
                runtime.close()
            producer.flush(10)
            archiver.shutdown(wait=True)
            pool.close()
            ledger.close()
            self._households.close()
            feed.join(5)
            index_stop.set()
            if self._claims_index is not None:
                self._claims_index.join(5)
        log.info("stopped", **self.counters.as_dict())
        return self.counters

    # -- one batch ---------------------------------------------------------------------------

    def _start_batch(self, messages: list[Message], ledger: RequestLedger, dead_letters: DeadLetterSink,
                     pool: RenderPool, in_flight_ids: frozenset[str]) -> _Batch:
        """Decide every request of the batch and hand the issued ones to the renderers (nothing is emitted
        yet but dead letters). in_flight_ids: the request ids of the batch still in flight, not yet in the
        ledger, so that a replay of one of them is caught here too."""
        received = time.monotonic()
        now = self._clock()
        pending: list[_Pending] = []
        seen_in_batch: set[str] = set(in_flight_ids)
        dead_lettered = self.counters.dead_lettered
        for msg in messages:
            self.counters.consumed += 1
            position = (msg.topic(), msg.partition(), msg.offset())
            origin = origin_of(self._cluster_id, msg.timestamp()[1])
            sent_to = _header(msg, CENTRE_HEADER)
            if self.options.centre is not None and sent_to is not None and sent_to.decode() != self.options.centre:
                self.counters.other_centre += 1  # the other centre's (its offset is committed with the batch)
                continue
            try:
                request = self._requests.decode(msg.value())
            except Exception as exc:  # foreign bytes: nothing to answer (no request id), so a dead letter
                self.counters.dead_lettered += 1
                dead_letters.send(msg, "MALFORMED", f"not a readable CertificateRequest: {type(exc).__name__}: {exc}")
                continue
            if self.options.centre is not None and sent_to is None and request.get("centre") != self.options.centre:
                self.counters.other_centre += 1  # no routing header: the centre the kiosk's vendor is assigned to
                continue
            decided_elsewhere = self._decided_elsewhere(request.get("request_id"))
            if decided_elsewhere is not None:
                if decided_elsewhere.withdrawn:
                    self.counters.withdrawn += 1  # the kiosk withdrew it before any worker claimed it
                else:
                    self.counters.superseded += 1  # a retry of a request the other centre decided and answered
                continue
            request_id = request["request_id"]
            seen = Seen.REPLAYED if request_id in seen_in_batch else ledger.seen(request_id, position, origin)
            if seen is Seen.REDELIVERED:
                self.counters.redelivered += 1
                continue
            seen_in_batch.add(request_id)
            item = _Pending(msg, position, origin, request, received)
            if seen is Seen.REPLAYED:
                item.refusal = refusal(ReasonCode.REPLAYED_REQUEST, "request id already answered")
            else:
                try:
                    self._decide(item, now)
                    if item.job is not None:
                        item.future = pool.submit(item.job)
                except Exception as exc:  # this request's failure, not the worker's: refused, the loop goes on
                    item.issue, item.job = None, None
                    item.refusal = _failed("deciding", exc)
            pending.append(item)
        return _Batch(messages, pending, now, received, time.monotonic(),
                      self.counters.dead_lettered > dead_lettered,
                      frozenset(item.request["request_id"] for item in pending))

    def _emit_batch(self, batch: _Batch, ledger: RequestLedger, dead_letters: DeadLetterSink, pool: RenderPool,
                    producer: Producer, archiver: ThreadPoolExecutor) -> _Emitted:
        """Wait for the batch's renders, then claim and emit it; it is marked delivered and its offsets are
        committed at the checkpoint that follows (_Serving.write_sink)."""
        waiting = time.monotonic()
        claims = [c for c in (self._answer(item, batch.now, dead_letters, pool) for item in batch.pending)
                  if c is not None]
        rendered = time.monotonic()
        claimed = emitted = rendered
        if claims:
            ledger.claim(claims)
            claimed = time.monotonic()
            crash_point("worker.after_claim")
            claims, not_emitted = self._arbitrate(claims, ledger, producer)
            withdrawn = frozenset(c.request_id for c in not_emitted if self._withdrawn_first(c.request_id))
            claims = self._emit(claims, ledger, producer, archiver) + not_emitted
            emitted = time.monotonic()
            return _Emitted(batch, claims, waiting, rendered, claimed, emitted, withdrawn)
        return _Emitted(batch, claims, waiting, rendered, claimed, emitted)

    def _arbitrate(self, claims: list[Claim], ledger: RequestLedger, producer: Producer) -> tuple[list[Claim],
                                                                                                     list[Claim]]:
        """With a centre: put the claims in the claims log, read it back, and keep what the first claim of each
        request id says (streams.centre_claims). Returns (to emit, to mark delivered with nothing emitted)."""
        index = self._claims_index
        if index is None:
            return claims, []
        # A replay refusal answers one message, not the request: it decides nothing, so it is not arbitrated.
        contested = [c for c in claims if not _is_replay_refusal(c, self._responses)]
        positions: dict[str, tuple[str, int, int]] = {}

        def claimed(err: Any, msg: Message) -> None:
            self._delivered(err, msg)
            if err is None:
                positions[(msg.key() or b"").decode()] = (msg.topic(), msg.partition(), msg.offset())

        assert self.options.centre is not None
        for c in contested:
            value, headers = claim_message(c, self.options.centre, _claim_header(c.key), REQUEST_HEADER)
            kafka.produce(producer, self.topics.claims, value, c.request_id.encode(), headers=headers,
                          on_delivery=claimed, partition=claim_partition(c.request_id, self._claim_partitions))
        self._delivered.flush(producer, "claims", "the batch is in doubt and will be completed from the ledger at "
                                                  "restart")
        crash_point("worker.after_centre_claim")
        index.wait_read(list(positions.values()), timeout=30)
        arbitrated = arbitrate(contested, _claim_header, index)
        by_key = {c.key: c for c in contested}
        for c in arbitrated.emit:
            if c.response != by_key[c.key].response:
                ledger.replace(c)  # the other centre's answer, under this claim: what a restart completes
                self.counters.took_over += 1
                self._uncount(by_key[c.key])
        for c in arbitrated.superseded:
            self.counters.superseded += 1
            self._uncount(c)
        for c in arbitrated.withdrawn:
            # The kiosk gave up and refunded before any claim: nothing of this request goes out, and its ledger
            # entry is marked delivered with nothing emitted, so a restart does not emit it either.
            self.counters.withdrawn += 1
            self._uncount(c)
        replays = [c for c in claims if _is_replay_refusal(c, self._responses)]
        return arbitrated.emit + replays, arbitrated.superseded + arbitrated.withdrawn

    def _withdrawn_first(self, request_id: str) -> bool:
        index = self._claims_index
        first = None if index is None else index.first(request_id)
        return first is not None and first.withdrawn

    def _decided_elsewhere(self, request_id: object) -> FirstClaim | None:
        """The first claim of the request id if it leaves this worker nothing to do: another worker's, whose answer
        is out, or the kiosk's withdrawal."""
        index = self._claims_index
        if index is None or not isinstance(request_id, str):
            return None
        first = index.first(request_id)
        if first is None or not (first.withdrawn or (first.answer is None and first.centre != self.options.centre)):
            return None
        return first

    def _uncount(self, claim: Claim) -> None:
        """This worker's own answer did not go out: it is not counted as this worker's."""
        if claim.status == "ISSUED":
            self.counters.issued -= 1
            self.counters.certificates -= len(claim.issued)
        else:
            self.counters.refused -= 1

    def _log_batch(self, emitted: _Emitted, done: float) -> None:
        batch = emitted.batch
        if emitted.claims:
            log.debug("batch", requests=len(emitted.claims),
                      decide_ms=round((batch.decided - batch.received) * 1000, 1),
                      queued_ms=round((emitted.waiting - batch.decided) * 1000, 1),
                      render_ms=round((emitted.rendered - emitted.waiting) * 1000, 1),
                      claim_ms=round((emitted.claimed - emitted.rendered) * 1000, 1),
                      emit_ms=round((emitted.emitted - emitted.claimed) * 1000, 1),
                      commit_ms=round((done - emitted.emitted) * 1000, 1))
        for item in batch.pending:
            request = item.request
            # Truncated: an invalid request's id may be anything up to the message size.
            fields: dict[str, Any] = {"request_id": request["request_id"][:128],
                                      "municipality": request["municipality_code"][:16],
                                      "certificate_type": request["certificate_type"],
                                      "ms": round((done - item.received) * 1000, 1)}
            if request["request_id"] in emitted.withdrawn:
                log.info("withdrawn", **fields)  # by its kiosk, first: nothing answered, issued or billed
                metrics.REQUEST_OUTCOMES.labels(self.group_id, "withdrawn", "").inc()
            elif item.refusal is not None:
                log.info("refused", reason_code=item.refusal.code.value, detail=item.refusal.detail, **fields)
                metrics.REQUEST_OUTCOMES.labels(self.group_id, "refused", item.refusal.code.value).inc()
            else:
                log.info("issued", copies=request["copies"], **fields)
                metrics.REQUEST_OUTCOMES.labels(self.group_id, "issued", "").inc()
            # Received → its response delivered (the claims' responses are flushed before their events).
            self._request_seconds.observe(emitted.emitted - item.received)

    def _decide(self, item: _Pending, now: dt.datetime) -> None:
        """The decision (domain.issuance_decision); sets item.refusal, or item.issue and its render job."""
        self._deciding = item
        try:
            decision = decide(item.request, now, self._lookups, self.options.policy)
        finally:
            self._deciding = None
        if isinstance(decision, Refusal):
            item.refusal = decision
            return
        item.issue = decision
        municipality = decision.municipality
        options = None
        if decision.resident_copy is not None:
            options = ResidentCopyOptions(member_codes=None, household_head_and_relationship=
                                          decision.resident_copy.household_head_and_relationship,
                                          domicile=decision.resident_copy.domicile)
        self._ensure_seal(municipality.code, municipality.name, now)
        item.job = RenderJob(item.request["request_id"], issuer_for(municipality), decision.kind,
                             decision.residents, now, decision.copies, options, decision.tax_year,
                             tuple(certificate_id(item.request["request_id"], n)
                                   for n in range(1, decision.copies + 1)), decision.disaster)

    @cached_property
    def _lookups(self) -> Lookups:
        """The decision's ports, bound to this worker's root, revocation sources, resident directory and
        disaster facts."""
        return Lookups(verify_certificate=self._verify_card, revocation_refusal=self._check_revocation,
                       records_for_serial=self.directory.by_serial, household=self.directory.household,
                       has_layout=LAID_OUT_TYPES.__contains__,
                       declared_disasters=self.disaster_facts.declared_disasters,
                       disaster_facts=self._read_household)

    def _read_household(self, disaster_id: str, record: Resident) -> HouseholdDisasterFacts | None:
        """The requester's household in a disaster's ledger, from the store; the read counted for the audit."""
        assert self._deciding is not None  # only asked while deciding a request
        self._deciding.ledger_reads += 1
        return self._households.disaster_facts(disaster_id, record)

    def _verify_card(self, certificate: x509.Certificate, at: dt.datetime) -> None:
        self._trust.verify_certificate(certificate, at)

    def _check_revocation(self, certificate: x509.Certificate, serial: str, now: dt.datetime) -> Refusal | None:
        with self._revoked_lock:
            seen = self._revoked.get(serial)
        if seen is not None and seen.revoked_at <= now:
            return refusal(ReasonCode.CARD_REVOKED, f"revoked {seen.revoked_at.isoformat()} ({seen.reason})")
        return self._trust.revocation_refusal(certificate, now)

    def _ensure_seal(self, municipality_code: str, name: str, now: dt.datetime) -> None:
        # In this process, before any renderer process reads the seal credentials.
        if municipality_code not in self._sealed:
            self._pki.ensure_seal_certificate(municipality_code, name, now)
            self._sealed.add(municipality_code)

    def _answer(self, item: _Pending, now: dt.datetime, dead_letters: DeadLetterSink, pool: RenderPool) -> Claim | None:
        """The request's claim (_finish); a refusal if its answer cannot be built; if not even that, None: the
        message is dead-lettered (its offset is committed with the batch)."""
        try:
            return self._finish(item, now, pool)
        except RenderersBrokenError:
            raise
        except Exception as exc:
            failure: Exception = exc
        try:
            return self._refusal_claim(item, _failed("answering", failure))
        except Exception as exc:
            self.counters.dead_lettered += 1
            dead_letters.send(item.msg, "UNANSWERABLE", f"cannot answer the request: {type(exc).__name__}: {exc}")
            return None

    def _finish(self, item: _Pending, now: dt.datetime, pool: RenderPool) -> Claim:
        """The response (and issued events) of one request, once its rendering is done."""
        request = item.request
        rendered: RenderedCertificate | None = None
        if item.future is not None:
            assert item.job is not None
            try:
                rendered = pool.result(item.job, item.future)
            except RenderersBrokenError:
                raise  # not this request's doing: the worker stops, nothing of the batch is claimed
            except RendererKilledError:  # this request's doing, proven alone: refused, never rendered again
                item.refusal = refusal(ReasonCode.ISSUE_FAILED, "rendering: the request killed the renderer process")
                self.counters.renderer_killed += 1
                metrics.RENDERER_KILLED.labels(self.group_id).inc()
                log.error("renderer_killed_by_request", request_id=request["request_id"][:128],
                          municipality=request["municipality_code"][:16], certificate_type=request["certificate_type"])
            except Exception as exc:  # this request's rendering failed: refused (the kiosk refunds)
                item.refusal = _failed("rendering", exc)
        if rendered is None:
            assert item.refusal is not None
            return self._refusal_claim(item, item.refusal)
        assert item.issue is not None  # only an issued request is rendered
        fee_per_copy = item.issue.fee_per_copy
        copies = request["copies"]
        ids = [certificate_id(request["request_id"], n) for n in range(1, copies + 1)]
        response = {"request_id": request["request_id"], "status": "ISSUED", "reason_code": None, "message": None,
                    "certificate_ids": ids, "pdf": rendered.pdf, "pages": rendered.sheets_per_copy * copies,
                    "fee_yen": fee_per_copy * copies, "responded_at": self._clock()}
        municipality_code = request["municipality_code"]
        issued = tuple(
            IssuedMessage(cid, municipality_code.encode(), self._issued.encode({
                "certificate_id": cid, "request_id": request["request_id"], "municipality_code": municipality_code,
                "certificate_type": request["certificate_type"], "copy_number": n, "copies": copies,
                "pages": rendered.sheets_per_copy, "kiosk_id": request["kiosk_id"],
                "kiosk_vendor": request["kiosk_vendor"], "centre": request["centre"],
                "kiosk_municipality_code": request["kiosk_municipality_code"], "issued_at": now,
                "fee_yen": fee_per_copy}))
            for n, cid in enumerate(ids, start=1))
        claim = Claim(item.position, request["request_id"], "ISSUED", request["request_id"].encode(),
                      self._responses.encode(response), issued, now.timestamp(), municipality_code, rendered.front_pngs,
                      item.origin)
        self.counters.issued += 1
        self.counters.certificates += copies
        return claim

    def _refusal_claim(self, answered: _Pending | Claim, refused: Refusal) -> Claim:
        request_id = answered.request["request_id"] if isinstance(answered, _Pending) else answered.request_id
        response = {"request_id": request_id, "status": "REFUSED", "reason_code": refused.code.value,
                    "message": refused.message, "certificate_ids": [], "pdf": None, "pages": 0, "fee_yen": 0,
                    "responded_at": self._clock()}
        claim = Claim(answered.position, request_id, "REFUSED", request_id.encode(), self._responses.encode(response),
                      origin=answered.origin)
        self.counters.refused += 1
        self.counters.refusals[refused.code.value] += 1
        return claim

    # -- emitting ----------------------------------------------------------------------------

    def _emit(self, claims: list[Claim], ledger: RequestLedger, producer: Producer, archiver: ThreadPoolExecutor,
              present_responses: set[ClaimKey] | None = None,
              present_certificates: set[str] | None = None) -> list[Claim]:
        """Archive, then responses, then issued events; skips what a recovery found already out. Returns the
        claims as emitted (an issue the archive refused went out as a refusal)."""
        archived = [(c, archiver.submit(self._archive_claim, c) if c.status == "ISSUED" else None) for c in claims]
        claims = [self._archived_or_refused(c, future, ledger) for c, future in archived]
        for c in claims:
            if present_responses is None or c.key not in present_responses:
                headers = [(REQUEST_HEADER, _claim_header(c.key))]
                if self.options.centre is not None:
                    headers.append((CENTRE_HEADER, self.options.centre.encode()))
                kafka.produce(producer, self.topics.responses, c.response, c.response_key, headers=headers,
                              on_delivery=self._on_delivery)
        self._flush(producer)
        crash_point("worker.after_responses")
        for c in claims:
            for m in c.issued:
                if present_certificates is None or m.certificate_id not in present_certificates:
                    kafka.produce(producer, self.topics.issued, m.value, m.key,
                                  headers=[(CERTIFICATE_HEADER, m.certificate_id.encode())],
                                  on_delivery=self._on_delivery)
        self._flush(producer)
        return claims

    def _archived_or_refused(self, claim: Claim, archived: Future[None] | None, ledger: RequestLedger) -> Claim:
        """The claim once its certificates are archived; if the archive refuses them (this request's data, not
        the disk), the request is refused instead: nothing of it is out yet, and its claim says so."""
        if archived is None:
            return claim
        try:
            archived.result()
        except IssuanceArchiveError as exc:
            self.counters.issued -= 1
            self.counters.certificates -= len(claim.issued)
            refused = self._refusal_claim(claim, _failed("archiving", exc))
            ledger.replace(refused)
            return refused
        return claim

    def _archive_claim(self, claim: Claim) -> None:
        assert claim.issued_at is not None and claim.municipality_code is not None
        pdf = self._responses.decode(claim.response)["pdf"]
        issued_at = dt.datetime.fromtimestamp(claim.issued_at, dt.UTC)
        for m in claim.issued:
            self._archive.put(m.certificate_id, claim.request_id, claim.municipality_code, issued_at, pdf,
                              list(claim.fronts))

    def _flush(self, producer: Producer) -> None:
        self._delivered.flush(producer, "responses or issued events",
                              "the batch is in doubt and will be completed from the ledger at restart")

    def _on_delivery(self, err: Any, msg: Message) -> None:
        self._delivered(err, msg)
        if err is not None:
            return
        at = (msg.topic(), msg.partition())
        self._marks[at] = max(self._marks.get(at, -1), msg.offset())

    def _take_marks(self) -> dict[tuple[str, int], int]:
        marks, self._marks = self._marks, {}
        return marks

    def _audit(self, pending: list[_Pending]) -> None:
        reads: dict[str, dict[str, int]] = defaultdict(dict)
        for item in pending:
            if item.issue is not None:
                reads[item.request["municipality_code"]][item.request["request_id"]] = item.issue.records_read
        if reads:
            audit_reads(self._audit_file, reads)
        # The ledger of a disaster is personal data too: read for a request whether it was issued or refused.
        ledger: dict[str, dict[str, int]] = defaultdict(dict)
        for item in pending:
            if item.ledger_reads:
                ledger[item.request["municipality_code"]][item.request["request_id"]] = item.ledger_reads
        if ledger:
            audit_reads(self._audit_file, ledger, action="disaster_ledger_read")

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self, ledger: RequestLedger, producer: Producer, archiver: ThreadPoolExecutor) -> None:
        """Complete the batch that was in doubt when the previous run stopped."""
        claims = ledger.pending()
        if not claims:
            return
        marks = ledger.output_marks()
        responses = {key for v in self._scan_headers(self.topics.responses, REQUEST_HEADER, marks)
                     if (key := _parse_claim_header(v)) is not None}
        certificates = {v.decode() for v in self._scan_headers(self.topics.issued, CERTIFICATE_HEADER, marks)}
        claims, superseded = self._arbitrate(claims, ledger, producer)
        if self._claims_index is not None:  # its answer may have gone out from the other centre
            responses |= {c.key for c in claims if self._claims_index.answered(c.request_id)}
        claims = self._emit(claims, ledger, producer, archiver, responses, certificates) + superseded
        ledger.mark_delivered([c.key for c in claims], self._take_marks())
        self.counters.recovered += len(claims)
        log.warning("recovered_in_doubt", requests=len(claims),
                    responses_already_out=sum(c.key in responses for c in claims),
                    certificates_already_out=sum(m.certificate_id in certificates for c in claims for m in c.issued))

    def _scan_headers(self, topic: str, header: str, marks: dict[tuple[str, int], int]) -> list[bytes]:
        """The header values of every message of `topic` after the marks (from the start where none)."""
        scan = _HeaderScan(header)
        after_marks = {tp: offset + 1 for tp, offset in marks.items() if tp[0] == topic}
        with ProcessorRuntime(f"{self.group_id}.recovery", self.bootstrap_servers,
                              Source((topic,), Start.BEGINNING, after_marks), scan,
                              LoopOptions(batch_size=500, poll_timeout=0.5, commit=False, until_caught_up=True,
                                          idle_seconds=0)) as runtime:
            runtime.run()
        return scan.values

    # -- the feed ----------------------------------------------------------------------------

    def _apply_feed(self, msg: Message) -> None:
        value = msg.value()
        if msg.topic() == self.topics.residents:
            key = msg.key()
            if key is None:
                return
            try:
                record = None if value is None else self._residents.decode(value)
            except Exception as exc:  # the materialiser validated it; a bad record is logged, not fatal
                log.warning("unreadable_resident", partition=msg.partition(), offset=msg.offset(), error=str(exc))
                return
            self.directory.put(key_of(key), record)
            return
        if value is None:
            return
        if msg.topic() == self.topics.disasters:
            try:
                event = self._disaster_events.decode(value)
            except Exception as exc:  # the relay wrote it from the store; a bad record is logged, not fatal
                log.warning("unreadable_disaster_event", partition=msg.partition(), offset=msg.offset(),
                            error=str(exc))
                return
            if self.disaster_facts.apply_disaster_event(event):
                log.info("disaster_state", disaster_id=event["disaster_id"], event_type=event["event_type"],
                         municipalities=list(event["municipality_codes"]))
            return
        try:
            revocation = revocation_from_record(self._revocations_serde.decode(value))
        except Exception as exc:  # logged and skipped: the CRL and OCSP still know the revocation
            log.warning("unreadable_revocation", partition=msg.partition(), offset=msg.offset(), error=str(exc))
            return
        with self._revoked_lock:
            self._revoked[revocation.serial] = merge_revocation(self._revoked.get(revocation.serial), revocation)


def _failed(stage: str, exc: Exception) -> Refusal:
    """ISSUE_FAILED for an unexpected failure of one request (logged: the operator must look at it)."""
    log.error("request_failed", stage=stage, error=f"{type(exc).__name__}: {exc}"[:500])
    return refusal(ReasonCode.ISSUE_FAILED, f"{stage}: {type(exc).__name__}")


def _header(msg: Message, name: str) -> bytes | None:
    return next((v for k, v in (msg.headers() or []) if k == name), None)


def _is_replay_refusal(claim: Claim, responses: AvroSerde) -> bool:
    return claim.status == "REFUSED" and responses.decode(claim.response)["reason_code"] == \
        ReasonCode.REPLAYED_REQUEST.value


def _claim_header(key: ClaimKey) -> bytes:
    """`topic:partition:offset:origin:request id` (a topic name and an origin have no colon; a request id may)."""
    request_id, topic, partition, offset, origin = key
    return f"{topic}:{partition}:{offset}:{origin}:{request_id}".encode()


def _parse_claim_header(value: bytes) -> ClaimKey | None:
    """None for a header this worker did not write (the first layout's `topic:partition:offset`): skipped. The
    second layout's `topic:partition:offset:request id` had no origin (its claims' origin is ''); an origin
    always holds an @ (request_ledger.origin_of)."""
    parts = value.decode(errors="replace").split(":", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    topic, partition, offset, rest = parts
    origin, colon, request_id = rest.partition(":")
    if not colon or "@" not in origin:
        origin, request_id = "", rest
    return request_id, topic, int(partition), int(offset), origin
