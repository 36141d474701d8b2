"""The one dead-letter handler: every processor sends what it cannot accept to bcl.dlq through it,
with the original key and bytes, where they came from, and a reason. Nothing is dropped silently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from confluent_kafka import Message, Producer

from infra import kafka, topics
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde

log = structlog.get_logger("dead_letters")


class Origin(Protocol):
    """Where a dead letter came from: a confluent_kafka Message, or a Faust message in that shape."""

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...


class DeadLetterSink:
    def __init__(self, producer: Producer, registry: BaseSchemaRegistry, processor: str,
                 on_delivery: Callable[[Any, Message], None] | None = None, *, topic: str = topics.DLQ) -> None:
        self._producer = producer
        self._topic = topic
        self._serde = AvroSerde(registry, CONTRACTS[topics.DLQ])
        self._processor = processor
        self._on_delivery = on_delivery

    def send(self, msg: Origin, reason_code: str, reason: str) -> None:
        """Log (where it came from and why: never the bytes) and publish the dead letter."""
        log.warning("dead_letter", processor=self._processor, reason_code=reason_code, reason=reason,
                    topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        record = {
            "processor": self._processor,
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": msg.key(),
            "value": msg.value(),
            "reason_code": reason_code,
            "reason": reason,
            "failed_at": dt.datetime.now(dt.UTC),
        }
        kafka.produce(self._producer, self._topic, self._serde.encode(record), msg.key(), on_delivery=self._on_delivery)
