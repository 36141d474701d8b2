"""The one processor runtime: every consumer loop of the platform is a handler plugged into `ProcessorRuntime`.

The runtime owns what each processor used to repeat: assigning every partition (at the group's committed
offsets, from the beginning, from the end, or at given offsets), polling in batches (or, in low-latency
mode, blocking for the first message and then taking only what is already there), per-partition
end-of-partition tracking and caught-up detection (partitions the handler holds count as caught up),
idle detection (`until_caught_up` + `idle_seconds`), the stop event, the metrics, and the durability
order at every checkpoint, modelled on quix-streams' checkpoint commit:

  1. flush what the handler produced and check every delivery (kafka.DeliveryTracker); an undelivered
     message raises before anything is written or committed, so the batch is processed again;
  2. the handler writes its sink and says which messages are now done;
  3. commit exactly those messages' offsets (explicit offsets, so that a held partition or a batch still
     in flight is never committed past).

A crash between any two steps re-delivers the batch; each handler's sink recognises what it already
holds. This is the only place that commits consumer offsets. Readers that never commit (a feed, a
recovery scan, the kiosk's response router) run the same loop with `commit=False`.
Single-instance processors: partitions are assigned, not subscribed, so a restart never waits for a
previous member's session to expire, while offsets are still committed under the group id.

Processors that run as several instances subscribe (`Source.subscribe`): the group coordinator hands out the
partitions. On a rebalance the runtime checkpoints *before* giving partitions up (flush → sink → commit, in the
revoke callback, so that the next owner starts exactly after what this one made durable), then tells the
handler (`partitions_revoked`); on an assignment it tells the handler (`partitions_assigned`) before any
message of those partitions is processed, so that the handler can rebuild their state first."""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, Producer, TopicPartition

from infra.kafka import ClusterUnavailableError, DeliveryTracker, KafkaClientError, make_consumer
from infra.metrics import ProcessorMetrics, Totals

Partition = tuple[str, int]
log = structlog.get_logger("processor_runtime")
# Commit refusals that mean "the group is rebalancing", not a failure: the commit is retried at the next checkpoint.
_REBALANCING = frozenset({KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                          KafkaError.UNKNOWN_MEMBER_ID})


class Start(enum.Enum):
    COMMITTED = "committed"  # the group's committed offsets; the beginning where there are none
    BEGINNING = "beginning"
    END = "end"  # the high watermark at assignment: only what is produced after `assign` returns


@dataclass(frozen=True)
class Source:
    topics: tuple[str, ...]
    start: Start = Start.COMMITTED
    # Explicit starting offsets of some partitions, over `start` (a recovery scan from recorded marks).
    offsets: Mapping[Partition, int] = field(default_factory=dict)
    # Group membership instead of assigning every partition: the group coordinator hands out partitions
    # (at the committed offsets), for processors that run as several instances.
    subscribe: bool = False


@dataclass(frozen=True)
class LoopOptions:
    batch_size: int = 5000
    poll_timeout: float = 0.5
    # Block for the first message only, then take what is already there: a lone message is handled at
    # once. Otherwise consume(batch_size, poll_timeout), which waits for a full batch or the timeout.
    low_latency: bool = False
    commit: bool = True
    until_caught_up: bool = False
    idle_seconds: float = 1.0
    lag_interval: float = 2.0  # seconds between metric refreshes outside checkpoints (lag, readers' totals)


@dataclass(frozen=True)
class Output:
    """What the handler produces through, checked at each checkpoint before its sink is written."""

    producer: Producer
    deliveries: DeliveryTracker
    what: str
    consequence: str = "the batch will be processed again"


class _AllDelivered:
    """write_sink's answer when every message handed to `process` so far is done: the runtime commits the
    consumer's positions (one call, instead of the handler keeping every message of a large batch)."""

    def __repr__(self) -> str:
        return "ALL_DELIVERED"


ALL_DELIVERED = _AllDelivered()
Done = Sequence[Message] | _AllDelivered


class Partitions(Protocol):
    """The runtime's partition control, as handlers see it."""

    def hold(self, msg: Message) -> None: ...

    def release(self, partitions: Sequence[Partition]) -> None: ...

    @property
    def held(self) -> Mapping[Partition, int]: ...

    @property
    def assigned(self) -> Sequence[Partition]: ...

    def group_committed_to_end(self, timeout: float = 10.0) -> bool: ...


class BatchHandler(Protocol):
    """A processor, as the runtime drives it. The defaults suit a reader that never checkpoints."""

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        """Called after every poll, also an empty one (so that time-based work happens on idle topics)."""

    def checkpoint_due(self, now: float, polled: int) -> bool:
        """Whether to checkpoint now (`polled`: messages in the poll just processed)."""
        return False

    def write_sink(self) -> Done:
        """Make the pending results durable (after their produced messages were delivered) and return the
        messages whose offsets may now be committed."""
        return ()

    def busy(self) -> bool:
        """Work in flight: the next poll must not wait on an idle topic."""
        return False

    def on_caught_up(self, now: float) -> None:
        """After a poll in which every partition is at its end or held."""

    def committed(self) -> None:
        """After a checkpoint's commit (progress reports, per-request logs and metrics)."""

    def drain(self) -> None:
        """Stopping (not failing): finish work in flight before the final checkpoint."""

    def totals(self) -> Totals:
        return Totals()

    def partitions_assigned(self, partitions: Sequence[Partition]) -> None:
        """Group membership: these partitions are now this instance's (called before their first message)."""

    def partitions_revoked(self, partitions: Sequence[Partition]) -> None:
        """Group membership: these partitions are no longer this instance's; what was read from them has been
        checkpointed (or, if they were lost, may be re-delivered to their next owner)."""


class ProcessorRuntime:
    def __init__(self, name: str, bootstrap_servers: str, source: Source, handler: BatchHandler,
                 options: LoopOptions = LoopOptions(), *, group_id: str | None = None, output: Output | None = None,
                 consumer_config: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.source = source
        self.options = options
        self.metrics = ProcessorMetrics(name)
        self._handler = handler
        self._output = output
        self._consumer = make_consumer(bootstrap_servers, group_id or name, **dict(consumer_config or {}))
        self._assigned: list[Partition] = []
        self._held: dict[Partition, int] = {}
        self._at_end: set[Partition] = set()
        self._delivered_since_commit = False
        self._lag_at = 0.0
        self._positioned = False
        self._failed = False  # the loop ended by an exception: nothing more is checkpointed, not even on revoke

    # -- partitions ----------------------------------------------------------------------------

    def assign(self, timeout: float = 30.0) -> list[Partition]:
        """Position every partition of the source; returns once positioned (when subscribing: once subscribed,
        the partitions follow from the group's assignment)."""
        consumer = self._consumer
        self._positioned = True
        if self.source.subscribe:
            consumer.subscribe(list(self.source.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
            return []
        partitions: list[Partition] = []
        try:
            for topic in self.source.topics:
                metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
                if metadata is None or metadata.error is not None or not metadata.partitions:
                    raise KafkaClientError(f"topic {topic} does not exist on the cluster")
                partitions += [(topic, p) for p in sorted(metadata.partitions)]
            start = self.source.start
            if start is Start.COMMITTED:
                committed = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=timeout)
                offsets = {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                           for tp in committed}
            elif start is Start.END:
                # Resolved now, not lazily (OFFSET_END): whatever is produced after this returns is read.
                offsets = {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)[1]
                           for t, p in partitions}
            else:
                offsets = dict.fromkeys(partitions, OFFSET_BEGINNING)
        except KafkaException as exc:
            # A timeout here means no broker answered: the cluster went away or the address is wrong.
            raise ClusterUnavailableError(
                f"no broker answered within {timeout:g} s while assigning {', '.join(self.source.topics)} "
                f"({exc.args[0].str()})"
            ) from None
        offsets.update({tp: o for tp, o in self.source.offsets.items() if tp in offsets})
        self._handler.partitions_assigned(partitions)  # before any message: the handler rebuilds their state
        consumer.assign([TopicPartition(t, p, offsets[(t, p)]) for t, p in partitions])
        self._assigned = partitions
        return partitions

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        added = sorted((tp.topic, tp.partition) for tp in partitions)
        self._assigned = sorted({*self._assigned, *added})
        self._handler.partitions_assigned(added)

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if revoked and not self._failed:
            # Before the partitions go: what was read from them becomes durable and committed, so that their
            # next owner starts exactly after it. A commit the group refuses (the partitions were already
            # lost) re-delivers the batch to the next owner, whose sink recognises what this one wrote.
            with contextlib.suppress(KafkaClientError):
                self._checkpoint()
        self._assigned = [p for p in self._assigned if p not in revoked]
        self._at_end -= revoked
        self._held = {p: o for p, o in self._held.items() if p not in revoked}
        self._handler.partitions_revoked(sorted(revoked))

    @property
    def assigned(self) -> Sequence[Partition]:
        return self._assigned

    @property
    def held(self) -> Mapping[Partition, int]:
        return self._held

    def hold(self, msg: Message) -> None:
        """Stop reading the message's partition at that message (it is read again once released)."""
        tp = TopicPartition(msg.topic(), msg.partition(), msg.offset())
        self._held[(tp.topic, tp.partition)] = tp.offset
        # Its end, if seen in this poll, is behind the rewind: once released it is caught up at its next end only.
        self._at_end.discard((tp.topic, tp.partition))
        self._consumer.seek(tp)
        self._consumer.pause([TopicPartition(tp.topic, tp.partition)])

    def release(self, partitions: Sequence[Partition]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in partitions])
        for partition in partitions:
            self._held.pop(partition, None)

    def group_committed_to_end(self, timeout: float = 10.0) -> bool:
        """Whether the group's committed offsets are at the end of every partition of the source, this
        instance's and the other members' alike: everything produced so far is durably processed."""
        try:
            for topic in self.source.topics:
                metadata = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
                if metadata is None or not metadata.partitions:
                    return False
                tps = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
                for tp in self._consumer.committed(tps, timeout=timeout):
                    _low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout)
                    if high > 0 and tp.offset < high:
                        return False
        except KafkaException:
            return False
        return True

    def caught_up(self) -> bool:
        return bool(self._assigned) and all(p in self._at_end or p in self._held for p in self._assigned)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Poll, process and checkpoint until `stop` is set (or, with until_caught_up, until caught up and idle);
        then drain and checkpoint a last time. On an exception nothing more is checkpointed."""
        if not self._positioned:
            self.assign()
        try:
            self._loop(stop)
        except BaseException:
            self._failed = True
            raise

    def _loop(self, stop: threading.Event | None) -> None:
        handler, options, metrics = self._handler, self.options, self.metrics
        last_message = time.monotonic()
        while stop is None or not stop.is_set():
            messages = self._poll(0 if handler.busy() else options.poll_timeout)
            began = time.perf_counter()
            now = time.monotonic()
            if messages:
                last_message = now
                self._delivered_since_commit = True
                metrics.consumed.inc(len(messages))
            handler.process(messages, self)
            if handler.checkpoint_due(now, len(messages)):
                self._checkpoint()
            if messages:
                metrics.batch_seconds.observe(time.perf_counter() - began)
            if now - self._lag_at >= options.lag_interval:
                self._refresh_metrics(now)
            if self.caught_up():
                handler.on_caught_up(now)
                if options.until_caught_up and now - last_message >= options.idle_seconds:
                    break
        handler.drain()
        self._checkpoint()
        self._refresh_metrics(time.monotonic())

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> ProcessorRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _poll(self, timeout: float) -> list[Message]:
        consumer = self._consumer
        if self.options.low_latency:
            first = consumer.poll(timeout)
            if first is None:
                return []
            batch = [first]
            if self.options.batch_size > 1:
                batch += consumer.consume(self.options.batch_size - 1, 0)
        else:
            batch = consumer.consume(self.options.batch_size, timeout)
        messages: list[Message] = []
        ended: set[Partition] = set()
        for msg in batch:
            err = msg.error()
            if err is None:
                messages.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                ended.add((msg.topic(), msg.partition()))
            elif err.fatal():
                raise KafkaClientError(f"fatal consumer error: {err.str()}")
            elif not err.retriable():
                raise KafkaClientError(f"consumer error: {err.str()}")
        if self._at_end and messages:
            self._at_end -= {(m.topic(), m.partition()) for m in messages}
        self._at_end |= ended
        return messages

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Flush produced → write sink → commit: the one durability order of every processor."""
        if self._output is not None:
            self._output.deliveries.flush(self._output.producer, self._output.what, self._output.consequence)
        done = self._handler.write_sink()
        if self.options.commit:
            self._commit(done)
        self._handler.committed()
        self.metrics.record_totals(self._handler.totals())

    def _commit(self, done: Done) -> None:
        if isinstance(done, _AllDelivered):
            if not self._delivered_since_commit:
                return
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._assigned])
            offsets = [tp for tp in positions if tp.offset >= 0]
        else:
            highest: dict[Partition, int] = {}
            for msg in done:
                at = (msg.topic(), msg.partition())
                highest[at] = max(highest.get(at, -1), msg.offset() + 1)
            offsets = [TopicPartition(t, p, o) for (t, p), o in highest.items()]
        if offsets:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                if self.source.subscribe and exc.args[0].code() in _REBALANCING:
                    # The group is reassigning the partitions: what this checkpoint made durable is re-delivered
                    # to their next owner (perhaps this one), whose sink recognises it. Retried at the next one.
                    log.info("commit_deferred", processor=self.name, reason=exc.args[0].str())
                    return
                raise KafkaClientError(f"cannot commit the consumed offsets ({exc.args[0].str()})") from None
        self._delivered_since_commit = False

    def _refresh_metrics(self, now: float) -> None:
        """The handler's totals (also for readers, which never checkpoint) and, per partition, the lag: the high
        watermark last seen in a fetch minus the position (local calls, no broker round trip)."""
        self._lag_at = now
        self.metrics.record_totals(self._handler.totals())
        if not self._assigned:
            return
        positions = self._consumer.position([TopicPartition(t, p) for t, p in self._assigned])
        for tp in positions:
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                self.metrics.set_lag(tp.topic, tp.partition, max(0, high - tp.offset))
