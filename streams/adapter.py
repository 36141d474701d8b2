"""The municipal adapter (連携APサーバ): publishes a municipality's full load and daily differences
as ResidentChange events, keyed by municipality + resident code, through an idempotent producer.

Its state (which simulated days were sent, the last sequence number) lives in a small JSON file per
municipality, as a real adapter keeps its own position. The synthetic register is deterministic, so
sending the same days again produces the same events with the same sequence numbers, which the
materialiser recognises as duplicates.

Every message is signed with its municipality's key (infra.register_signing), in runs of up to RUN_SIZE
messages of one municipality; `publish_signed` is the one way anything writes bcl.register.diffs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

from domain.errors import BclError
from domain.register_signature import RUN_SIZE
from domain.register_validation import message_key
from infra import kafka, topics
from infra.register_signing import Headers, RegisterSigner
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from streams.register.reference import ReferenceData
from streams.register.simulator import RegisterSimulator


class AdapterError(BclError):
    pass


@dataclass
class AdapterState:
    municipality_code: str
    population: int | None
    seed: int
    start: str  # ISO instant of the full load
    last_day: int = 0  # last simulated day sent (0: only the full load)
    last_sequence: int = 0

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


@dataclass
class PublishResult:
    sent: int = 0
    delivered: int = 0
    last_sequence: int = 0
    failures: int = 0


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
) -> PublishResult:
    """Encode, sign and send events; returns once every event is acknowledged by the cluster (acks=all)."""
    serde = AvroSerde(registry, CONTRACTS[topics.REGISTER_DIFFS])
    result = PublishResult()

    def encoded() -> Iterable[tuple[str, bytes, bytes]]:
        for event in events:
            result.last_sequence = event["sequence"]
            yield (event["municipality_code"], message_key(event["municipality_code"], event["resident_code"]),
                   serde.encode(event))

    return publish_signed(encoded(), bootstrap_servers, signers, topic=topic, progress=progress, result=result)


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
    result: PublishResult | None = None,
) -> PublishResult:
    """Sign (municipality, key, value) messages with the municipality's key, in runs, and send them.

    The one way anything writes bcl.register.diffs (the adapter, the demo, tests, benchmarks)."""
    producer = kafka.make_producer(bootstrap_servers, bulk=True)
    result = result if result is not None else PublishResult()
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            result.delivered += 1
        else:
            errors.append(err)

    for key, value, headers in sign_messages(messages, signers):
        kafka.produce(producer, topic, value, key, headers=headers, on_delivery=delivered)
        result.sent += 1
        if result.sent % 1000 == 0:
            producer.poll(0)
            progress(1000)
    progress(result.sent % 1000)
    producer.flush()
    result.failures = len(errors)
    if errors or result.delivered != result.sent:
        raise AdapterError(
            f"{result.sent - result.delivered} of {result.sent} events were not delivered "
            f"({errors[0].str() if errors else 'timed out'}); run the same command again: "
            "the events are deterministic and duplicates are ignored"
        )
    return result
