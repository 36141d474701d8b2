"""The municipal adapter (連携APサーバ): publishes a municipality's full load and daily differences
as ResidentChange events, keyed by municipality + resident code, through an idempotent producer.

Its state (which simulated days were sent, the last sequence number) lives in a small JSON file per
municipality, as a real adapter keeps its own position. The synthetic register is deterministic, so
sending the same days again produces the same events with the same sequence numbers, which the
materialiser recognises as duplicates; and it can send its events again from any sequence number
(after an operator's resync of the backup, `resend`).

Delivery is bounded: every event must be acknowledged by the cluster (acks=all) within
`delivery_timeout` seconds, which librdkafka spends retrying (a broker that is down, a leader that
moves). While it waits the caller hears how many events are still unacknowledged; when the time is
up it fails with the cluster's address, what it waited for and the last broker error, and the
adapter's position is not advanced.

Every message is signed with its municipality's key (infra.register_signing), in runs of up to RUN_SIZE
messages of one municipality; `publish_signed` is the one way anything writes bcl.register.diffs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

from domain.errors import BclError
from domain.register_signature import RUN_SIZE
from domain.register_validation import message_key
from infra import kafka, topics
from infra.kafka import ClusterUnavailableError
from infra.register_signing import Headers, RegisterSigner
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from streams.register.reference import ReferenceData
from streams.register.simulator import RegisterSimulator


class AdapterError(BclError):
    pass


class DeliveryTimeoutError(AdapterError, ClusterUnavailableError):
    """Events not acknowledged in time: the cluster (or a broker of it) is not answering; retry later."""


@dataclass
class AdapterState:
    municipality_code: str
    population: int | None
    seed: int
    start: str  # ISO instant of the full load
    last_day: int = 0  # last simulated day sent (0: only the full load)
    last_sequence: int = 0
    welfare_day: int = -1  # last simulated day whose welfare changes were sent (0: the welfare full load; -1: none)

    @classmethod
    def load(cls, directory: Path, municipality_code: str) -> AdapterState:
        path = directory / f"{municipality_code}.json"
        if not path.exists():
            raise AdapterError(
                f"municipality {municipality_code} has not been loaded yet: run `bcl adapter full-load "
                f"--municipality {municipality_code}` first"
            )
        return cls(**json.loads(path.read_text()))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.municipality_code}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    def simulator(self, reference: ReferenceData, font_path: Path) -> RegisterSimulator:
        return RegisterSimulator(reference, self.municipality_code, population=self.population, seed=self.seed,
                                 start=dt.datetime.fromisoformat(self.start), font_path=font_path)

    def events_from(self, simulator: RegisterSimulator, from_sequence: int) -> Iterator[dict[str, Any]]:
        """Every event already sent with a sequence number from `from_sequence` on, the same as sent."""
        if not 1 <= from_sequence <= self.last_sequence:
            raise AdapterError(f"municipality {self.municipality_code} has sent sequence 1–{self.last_sequence}: "
                               f"cannot send again from {from_sequence}")
        sent = itertools.chain(simulator.full_load(), simulator.changes(self.last_day, from_day=1))
        return (e for e in sent if e["sequence"] >= from_sequence)

    def welfare_events(self, simulator: RegisterSimulator) -> Iterator[dict[str, Any]]:
        """The welfare systems' events not sent yet, up to the register's last day sent: the welfare full load first
        (when not sent), then the changes of the days after `welfare_day`."""
        if self.welfare_day < 0:
            yield from simulator.welfare_full_load()
        first = max(1, self.welfare_day + 1)
        if self.last_day >= first:
            yield from simulator.welfare_changes(self.last_day - first + 1, from_day=first)


@dataclass
class PublishResult:
    sent: int = 0
    delivered: int = 0
    last_sequence: int = 0
    failures: int = 0


DELIVERY_TIMEOUT_S = 60.0
WAITING_REPORT_S = 2.0  # how often `waiting` hears about the events not yet acknowledged


Signers = Callable[[str], RegisterSigner]  # municipality code → its signer
Signed = tuple[bytes | None, bytes, Headers]  # key, value, headers


def publish(
    events: Iterable[dict[str, Any]],
    bootstrap_servers: str,
    registry: BaseSchemaRegistry,
    signers: Signers,
    *,
    topic: str = topics.REGISTER_DIFFS,
    progress: Callable[[int], None] = lambda n: None,
    waiting: Callable[[int, float], None] = lambda unacknowledged, seconds: None,
    delivery_timeout: float = DELIVERY_TIMEOUT_S,
) -> PublishResult:
    """Encode, sign and send events (publish_signed)."""
    serde = AvroSerde(registry, CONTRACTS[topics.REGISTER_DIFFS])
    result = PublishResult()

    def encoded() -> Iterator[tuple[str, bytes, bytes]]:
        for event in events:
            result.last_sequence = event["sequence"]
            yield (event["municipality_code"], message_key(event["municipality_code"], event["resident_code"]),
                   serde.encode(event))

    return publish_signed(encoded(), bootstrap_servers, signers, topic=topic, progress=progress, waiting=waiting,
                          delivery_timeout=delivery_timeout, result=result)


def publish_welfare(
    events: Iterable[dict[str, Any]],
    bootstrap_servers: str,
    registry: BaseSchemaRegistry,
    signers: Signers,
    *,
    topic: str = topics.WELFARE_STATUS,
    progress: Callable[[int], None] = lambda n: None,
    waiting: Callable[[int, float], None] = lambda unacknowledged, seconds: None,
    delivery_timeout: float = DELIVERY_TIMEOUT_S,
) -> PublishResult:
    """Encode (WelfareStatus), sign with the municipality's key like the register and send welfare events, keyed by
    municipality + resident code (publish_signed, the same bounded delivery)."""
    serde = AvroSerde(registry, CONTRACTS[topics.WELFARE_STATUS])
    messages = ((e["municipality_code"], message_key(e["municipality_code"], e["resident_code"]), serde.encode(e))
                for e in events)
    return publish_signed(messages, bootstrap_servers, signers, topic=topic, progress=progress, waiting=waiting,
                          delivery_timeout=delivery_timeout)


def sign_messages(
    messages: Iterable[tuple[str, bytes | None, bytes]], signers: Signers, run_size: int = RUN_SIZE
) -> Iterator[Signed]:
    """(municipality, key, value) → (key, value, headers): signed in runs of up to run_size consecutive
    messages of one municipality, each run once it is complete, so messages keep their order."""
    run: list[tuple[bytes | None, bytes]] = []
    municipality = ""
    for code, key, value in messages:
        if run and (code != municipality or len(run) == run_size):
            yield from _signed_run(run, signers(municipality))
            run = []
        municipality = code
        run.append((key, value))
    if run:
        yield from _signed_run(run, signers(municipality))


def _signed_run(run: list[tuple[bytes | None, bytes]], signer: RegisterSigner) -> Iterator[Signed]:
    for (key, value), headers in zip(run, signer.sign_run(run), strict=True):
        yield key, value, headers


def publish_signed(
    messages: Iterable[tuple[str, bytes | None, bytes]],
    bootstrap_servers: str,
    signers: Signers,
    *,
    topic: str = topics.REGISTER_DIFFS,
    progress: Callable[[int], None] = lambda n: None,
    waiting: Callable[[int, float], None] = lambda unacknowledged, seconds: None,
    delivery_timeout: float = DELIVERY_TIMEOUT_S,
    result: PublishResult | None = None,
) -> PublishResult:
    """Sign (municipality, key, value) messages with the municipality's key, in runs, and send them: the one
    way anything writes bcl.register.diffs (the adapter, the demo, tests, benchmarks) and bcl.welfare.status.
    Returns once every message is acknowledged by the cluster (acks=all), or raises DeliveryTimeoutError when
    some are not within `delivery_timeout` seconds of being sent (AdapterError when the cluster refused some).
    `waiting(unacknowledged, seconds)` is called every few seconds while messages wait for their
    acknowledgement."""
    result = result if result is not None else PublishResult()
    errors: list[KafkaError] = []
    broker_errors: list[KafkaError] = []  # a broker that cannot be reached, as librdkafka reports it
    # librdkafka retries within message.timeout.ms, then fails the event: the bound of the whole wait.
    producer = kafka.make_producer(bootstrap_servers, bulk=True, error_cb=broker_errors.append,
                                   **{"message.timeout.ms": max(1, int(delivery_timeout * 1000))})

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            result.delivered += 1
        else:
            errors.append(err)

    began = time.monotonic()
    reported = began
    for key, value, headers in sign_messages(messages, signers):
        kafka.produce(producer, topic, value, key, headers=headers, on_delivery=delivered)
        result.sent += 1
        if result.sent % 1000 == 0:
            producer.poll(0)
            progress(1000)
            if time.monotonic() - reported >= WAITING_REPORT_S and len(producer) > 1000:
                reported = time.monotonic()
                waiting(len(producer), reported - began)
    progress(result.sent % 1000)
    sent_at = time.monotonic()
    # Flushed in steps, to say what it waits for; librdkafka's own timeout ends the wait (plus a margin).
    while len(producer) and time.monotonic() - sent_at < delivery_timeout + 10:
        producer.flush(WAITING_REPORT_S)
        if len(producer):
            waiting(len(producer), time.monotonic() - began)
    result.failures = result.sent - result.delivered
    if result.failures:
        why = "; ".join(e.str() for e in (errors[-1:] + broker_errors[-1:])) or "no answer"
        if any(e.code() != KafkaError._MSG_TIMED_OUT for e in errors):
            raise AdapterError(f"the cluster at {bootstrap_servers} refused {result.failures} of {result.sent} events "
                               f"({why}); the adapter's position was not advanced")
        raise DeliveryTimeoutError(
            f"the cluster at {bootstrap_servers} did not acknowledge {result.failures} of {result.sent} events "
            f"within {delivery_timeout:g} s (waited for each partition's leader to confirm them with acks=all: "
            f"{why}); the adapter's position was not advanced: run the same command again once every broker "
            "answers (the events are deterministic, duplicates are ignored)"
        )
    return result
