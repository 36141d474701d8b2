"""The kiosk process's one reader of bcl.kiosk.responses: it hands each response to the request waiting for it.

Why one consumer per process and not one per request: a consumer costs a connection to every broker,
a metadata round trip and a partition assignment before it sees anything, and N waiting requests
would read the topic N times. The router reads every partition once, from the end it found at start
(responses to earlier requests are not this process's business), and dispatches by key (the request
id) to the waiting request. Responses for requests of other kiosk processes are skipped after
looking at the key only, without decoding the value.

A request registers with `expect` BEFORE it is produced, so a fast answer cannot arrive unclaimed.
Responses are read with isolation.level=read_committed: a worker that answers inside Kafka
transactions may abort one, and an aborted answer must never reach a kiosk.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Message

from domain.issuing_centres import CENTRE_HEADER
from infra.kafka import ClusterUnavailableError, KafkaClientError
from infra.metrics import Totals
from infra.processor_runtime import BatchHandler, LoopOptions, Partitions, ProcessorRuntime, Source, Start
from infra.topics import KIOSK_RESPONSES
from kiosk_sim.errors import KioskSimError
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde, WireFormatError

# Fetch quickly rather than wait for bytes to accumulate: a kiosk waits on every answer.
_CONSUMER_OVERRIDES: dict[str, Any] = {
    "isolation.level": "read_committed",
    "fetch.wait.max.ms": 5,
    "fetch.error.backoff.ms": 50,
    "enable.partition.eof": False,
    "enable.auto.offset.store": False,
}


class ResponseRouterError(KioskSimError):
    """The router cannot read the responses topic (it is missing, or the cluster is unreachable)."""


@dataclass(frozen=True, slots=True)
class RoutedResponse:
    """A decoded CertificateResponse (or why it could not be decoded) and when the router received it
    (time.perf_counter())."""

    record: dict[str, Any] | None
    received_at: float
    error: str | None = None
    centre: str | None = None  # the centre whose worker answered (its header), when there are two


class PendingResponse:
    """A request waiting for its response."""

    __slots__ = ("_event", "_response", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._event = threading.Event()
        self._response: RoutedResponse | None = None

    def _deliver(self, response: RoutedResponse) -> None:
        self._response = response
        self._event.set()

    def wake(self) -> None:
        """Stop waiting without a response (the request could not be sent, or the router stopped)."""
        self._event.set()

    def wait(self, timeout: float | None) -> RoutedResponse | None:
        """The response, or None if none came within `timeout` seconds."""
        self._event.wait(timeout)
        return self._response


@dataclass
class RouterCounters:
    received: int = 0  # responses read from the topic
    delivered: int = 0  # ... handed to a waiting request
    unclaimed: int = 0  # ... for requests this process is not waiting for (other kiosks, timed out)
    undecodable: int = 0  # ... with a key but a value that is not a CertificateResponse


class ResponseRouter(BatchHandler):
    """Reads the responses topic in a background thread and wakes the request each response answers
    (a handler of infra.processor_runtime: from the end, low-latency polls, no commit)."""

    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, *, topic: str = KIOSK_RESPONSES,
                 poll_timeout: float = 0.05) -> None:
        self.topic = topic
        self._serde = AvroSerde(registry, CONTRACTS[KIOSK_RESPONSES])
        # poll() returns on the first message, then the runtime takes what is ready: consume(n, timeout)
        # would wait for n messages or the whole timeout and hold every answer back.
        self._runtime = ProcessorRuntime(
            "kiosk-response-router", bootstrap_servers, Source((topic,), Start.END), self,
            LoopOptions(batch_size=501, poll_timeout=poll_timeout, low_latency=True, commit=False),
            group_id=f"bcl-kiosk-router-{uuid.uuid4().hex[:12]}", consumer_config=_CONSUMER_OVERRIDES)
        self._pending: dict[str, PendingResponse] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.counters = RouterCounters()

    def start(self, timeout: float = 30.0) -> ResponseRouter:
        """Position every partition at its current end, then start reading. Returns when positioned,
        so any request produced after this call is answered through the router."""
        try:
            self._runtime.assign(timeout)
        except ClusterUnavailableError:
            raise  # the command line says so, with its own exit status
        except (KafkaClientError, KafkaException) as exc:
            raise ResponseRouterError(f"cannot read {self.topic}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="kiosk-response-router", daemon=True)
        self._thread.start()
        return self

    def expect(self, request_id: str) -> PendingResponse:
        """Register a request before producing it."""
        self._raise_if_failed()
        pending = PendingResponse(request_id)
        with self._lock:
            if request_id in self._pending:
                raise ResponseRouterError(f"request {request_id} is already waiting for a response")
            self._pending[request_id] = pending
        return pending

    def forget(self, request_id: str) -> None:
        """Stop waiting for a request (answered, timed out or never sent); a late answer is then unclaimed."""
        with self._lock:
            self._pending.pop(request_id, None)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._runtime.close()

    def __enter__(self) -> ResponseRouter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ResponseRouterError(f"the response router stopped: {self._failure}") from self._failure

    def _run(self) -> None:
        try:
            self._runtime.run(self._stop)
        except BaseException as exc:  # outermost boundary of the thread: waiting requests see it
            self._failure = exc
            with self._lock:
                waiting = list(self._pending.values())
            for pending in waiting:
                pending.wake()  # wake them: they find no response and report the failure

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        if not messages:
            return
        received_at = time.perf_counter()
        for msg in messages:
            centre = next((v for k, v in (msg.headers() or []) if k == CENTRE_HEADER and v), None)
            self._route(msg.key(), msg.value(), received_at, centre.decode() if centre else None)

    def totals(self) -> Totals:
        return Totals(self.counters.delivered)

    def _route(self, key: bytes | None, value: bytes | None, received_at: float, centre: str | None = None) -> None:
        self.counters.received += 1
        if key is None:
            self.counters.unclaimed += 1
            return
        request_id = key.decode("utf-8", errors="replace")
        with self._lock:
            pending = self._pending.pop(request_id, None)
        if pending is None:
            self.counters.unclaimed += 1
            return
        try:
            routed = RoutedResponse(self._serde.decode(value or b""), received_at, centre=centre)
        except (WireFormatError, UnknownSchemaId, ValueError, EOFError) as exc:
            self.counters.undecodable += 1
            routed = RoutedResponse(None, received_at, f"the response is not a CertificateResponse: {exc}", centre)
        self.counters.delivered += 1
        pending._deliver(routed)

    def check(self) -> None:
        """Raise if the reading thread died (the caller then stops sending requests)."""
        self._raise_if_failed()
