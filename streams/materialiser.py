"""The backup materialiser: bcl.register.diffs → validated, applied → bcl.residents + change history.

Batch path, because per-event processing with a table write is far too slow for full loads: the
messages of a poll in the current schema version are decoded together into Arrow
(schemas/arrow_decode.py); older versions and batches holding a malformed body go message by
message through fastavro. For every message, first its signature: signed by a registered key of the
municipality it is about (infra.register_signing), before anything reads its bytes. For every event: wire
format and schema id, Avro body, codes and check digits (vectorised in a batch), no certificate serial that
another current record holds (domain.serial_holders), then the per-municipality sequence decides apply /
fill a gap / duplicate. Anything that cannot be accepted goes to bcl.dlq with its original bytes and a reason;
the processor keeps going. On the batch path the record is forwarded to bcl.residents as the tail of
the change's bytes (`after` is the contract's last field), without re-encoding; the decoder proves
where each message's fields start.

Durability order per batch (the checkpoint of infra.processor_runtime): (1) flush residents and dead
letters, (2) write the history batch to the snapshot store, (3) commit offsets. A crash at any point
re-delivers events that the sequence state and the serial holders (both rebuilt from the history at
start) recognise as already applied, so nothing is lost and nothing is applied twice; the two in-doubt
points between the steps are crash points (infra/crash_points.py) that the tests kill the process at.

Scale-out (docs/architecture.md, "Scale-out ingest"): N processes in one consumer group (`group_member`),
bcl.register.diffs keyed and partitioned by municipality + resident code as before (a city's full load spread
over every partition). Why each check stays exact:
- duplicates: a duplicate is the same event, so the same key, so the same partition as its original; the
  partition's one writer (its lock in the snapshot store) knows every event applied there: those it applied,
  and those the previous owners made durable, read from the history when the partition was assigned;
- record order: a record's changes share its key, so its partition: the latest state only moves forward, and
  bcl.residents gets them in order, as with one process;
- gaps: a gap is a fact about a municipality's whole sequence, spread over all partitions: it is reported from
  the history (the union of what every process wrote) once the group's committed offsets are at the end of
  every partition (so the history holds everything sent), by the member holding partition 0 (`bcl backup
  status` reads the same history); the jump bound (sequence_out_of_reach) is checked against the
  municipality's watermark as this process knows it, and, before refusing, against the history's;
- SERIAL_IN_USE: a serial's holders are records of any municipality on any partition, so no partitioning makes
  it local: the holders are one index the processes share (sinks.serial_index), a claim one atomic step.
On a rebalance the runtime checkpoints before the partitions go; the new owner takes each partition's lock
(waiting for the previous owner's last write, or its death) and rebuilds its state from the history before it
reads any message there."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from confluent_kafka import Message, Producer

from domain.codes import is_valid_municipality_code, valid_individual_numbers
from domain.register_validation import (
    ITEM_LIMITS,
    MAX_SEAL_IMAGE_BYTES,
    SEAL_IMAGE,
    TEXT_LIMITS,
    Rejection,
    event_time_window,
    sequence_out_of_reach,
    validate_change,
    validate_change_fields,
)
from domain.sequencing import MunicipalitySequence, Outcome
from infra import kafka, topics
from infra.crash_points import crash_point
from infra.metrics import Totals
from infra.processor_runtime import (
    ALL_DELIVERED,
    BatchHandler,
    Done,
    LoopOptions,
    Output,
    Partition,
    Partitions,
    ProcessorRuntime,
    Source,
)
from infra.register_signing import SignatureVerifier
from schemas.arrow_decode import ArrowBatchDecoder, DecodedBatch
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import HEADER, MAGIC, AvroSerde, frame
from sinks.serial_index import SerialIndex
from sinks.snapshot_store import BaseSnapshotStore, PartitionLock, history_schema, latest_changes
from streams.dead_letters import DeadLetterSink

log = structlog.get_logger("materialiser")

PROCESSOR = "backup-materialiser"
# The in-doubt points of a checkpoint (test-only crash points, docs/operations.md).
AFTER_PRODUCE = "materialiser.after_produce"  # residents and dead letters flushed, history not written
AFTER_HISTORY = "materialiser.after_history"  # history written, offsets not committed


@dataclass(frozen=True)
class MaterialiserTopics:
    """Where the materialiser reads and writes; the catalogue's topics unless a test isolates itself."""

    diffs: str = topics.REGISTER_DIFFS
    residents: str = topics.RESIDENTS
    dlq: str = topics.DLQ


@dataclass
class Counters:
    consumed: int = 0
    applied: int = 0  # includes gap fills
    gap_fills: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    residents_published: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    """What happened since the last commit: history rows per municipality and messages consumed."""

    # Rows from the message-by-message path, as columns, and Arrow tables from the batch path.
    rows: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    tables: dict[str, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    row_count: int = 0
    consumed: int = 0
    since: float = field(default_factory=time.monotonic)


class BackupMaterialiser(BatchHandler):
    def __init__(
        self,
        bootstrap_servers: str,
        registry: BaseSchemaRegistry,
        store: BaseSnapshotStore,
        *,
        verifier: SignatureVerifier,
        group_id: str = PROCESSOR,
        batch_size: int = 10_000,
        flush_rows: int = 50_000,
        flush_seconds: float = 1.0,
        gap_grace_seconds: float = 5.0,
        topic_names: MaterialiserTopics = MaterialiserTopics(),
        group_member: bool = False,
        session_timeout_ms: int = 6000,
    ) -> None:
        self.topics = topic_names
        self._serde = AvroSerde(registry, CONTRACTS[topics.REGISTER_DIFFS])
        self._resident_serde = AvroSerde(registry, CONTRACTS[topics.RESIDENTS])
        self._decoder = ArrowBatchDecoder(self._serde.contract_schema)
        self._current_header = HEADER.pack(MAGIC, self._serde.schema_id)
        self._store = store
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._batch_size = batch_size
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._schema = history_schema()
        self._resident_fields = [f.name for f in self._schema if f.name not in _EVENT_COLUMNS]
        self.counters = Counters()
        self.last_applied_at = 0.0  # wall-clock time when the last applied batch became durable
        self.sequences: dict[str, MunicipalitySequence] = {}
        self._resident_seq: dict[tuple[str, str], int] = {}
        self._verifier = verifier
        # One of several processes in the group (subscribed), or the only one (every partition assigned).
        self._group_member = group_member
        self._session_timeout_ms = session_timeout_ms
        self._serials: SerialIndex | None = None
        self._holding: set[tuple[str, str]] = set()  # records holding a serial (a superset of this process's)
        self._partition_locks: dict[Partition, PartitionLock] = {}
        self._runtime: Partitions | None = None
        self._applied_since_gap_check = True
        self._gap_checked_at = 0.0
        # Events of a municipality are spread over partitions, so short-lived gaps are normal while
        # partitions are read at different speeds: a gap is reported once it outlives this grace.
        self._gap_grace = gap_grace_seconds
        self._gap_open_since: dict[str, float] = {}
        self._gaps_reported: dict[str, tuple[tuple[int, int], ...]] = {}
        self._producer: Producer | None = None
        self._dead_letters: DeadLetterSink | None = None
        self._delivered = kafka.DeliveryTracker()
        self._pending = _Pending()

    # -- state -------------------------------------------------------------------------------
    def recover(self) -> None:
        """Rebuild sequence and per-resident state from the snapshot store (the durable truth)."""
        if not self._store.has_history():
            return
        con = duckdb.connect()
        rel = self._store.history_relation(con)
        for muni, seqs in con.execute(
            f"SELECT municipality_code, list(sequence ORDER BY sequence) FROM {rel} GROUP BY 1"
        ).fetchall():
            self.sequences[muni] = MunicipalitySequence.from_applied(seqs)
        for muni, rc, seq in con.execute(
            f"SELECT municipality_code, resident_code, max(sequence) FROM {rel} GROUP BY 1, 2"
        ).fetchall():
            self._resident_seq[(muni, rc)] = seq
        assert self._serials is not None
        self._holding = self._serials.holding()
        log.info("recovered", municipalities=len(self.sequences), residents=len(self._resident_seq),
                 serials=len(self._holding))

    def _open_serial_index(self) -> SerialIndex:
        """The shared serial index, built from the history if it never was (or a resync made it stale)."""
        with self._store.serial_index_build_lock():  # opened under it too: a new database is set up once
            index = self._store.serial_index()
            if not index.built:
                con = duckdb.connect()
                rows = con.execute(f"""
                    SELECT municipality_code, resident_code, list_transform(jpki_certificates, lambda c: c.serial)
                    FROM ({latest_changes(self._store.history_relation(con))})
                    WHERE NOT removed AND status = 'CURRENT' AND len(jpki_certificates) > 0
                """).fetchall() if self._store.has_history() else []
                index.rebuild(rows)
        return index

    # -- partitions (infra.processor_runtime calls these on every assignment and revocation) --------
    def partitions_assigned(self, partitions: Sequence[Partition]) -> None:
        """Become the one writer of these partitions (waiting for their previous owner's last checkpoint),
        then rebuild the state from the history, which now holds everything their previous owners applied."""
        for partition in partitions:
            if partition not in self._partition_locks:
                self._partition_locks[partition] = self._store.partition_lock(*partition, PROCESSOR)
        self.sequences.clear()
        self._resident_seq.clear()
        self.recover()
        log.info("partitions_assigned", partitions=sorted(p for _, p in self._partition_locks))
        self._applied_since_gap_check = True

    def partitions_revoked(self, partitions: Sequence[Partition]) -> None:
        """The runtime has checkpointed what was read from them: give up their locks."""
        for partition in partitions:
            lock = self._partition_locks.pop(partition, None)
            if lock is not None:
                lock.release()

    # -- the loop (infra.processor_runtime drives it; this class is its handler) -------------
    def run(
        self, stop: threading.Event | None = None, *, until_caught_up: bool = False, idle_seconds: float = 1.0
    ) -> Counters:
        """Process until stopped (or, with until_caught_up, until every partition is at its end and
        nothing arrived for idle_seconds). The snapshot store's writer lock is held throughout, so that an
        operator's resync cannot change the history under the sequence state."""
        with self._store.writer_lock(PROCESSOR, shared=True):
            self._serials = self._open_serial_index()
            try:
                return self._run(stop, until_caught_up, idle_seconds)
            finally:
                for lock in self._partition_locks.values():
                    lock.release()
                self._partition_locks.clear()
                self._serials.close()

    def _run(self, stop: threading.Event | None, until_caught_up: bool, idle_seconds: float) -> Counters:
        self._producer = kafka.make_producer(self._bootstrap, bulk=True)
        self._dead_letters = DeadLetterSink(
            self._producer, self._serde.registry, PROCESSOR, self._delivered, topic=self.topics.dlq
        )
        self._pending = _Pending()
        runtime = ProcessorRuntime(
            self._group_id, self._bootstrap, Source((self.topics.diffs,), subscribe=self._group_member), self,
            LoopOptions(batch_size=self._batch_size, poll_timeout=0.5, until_caught_up=until_caught_up,
                        idle_seconds=idle_seconds),
            output=Output(self._producer, self._delivered, "residents or dead letters"),
            # A member killed without leaving the group is replaced once its session expires.
            consumer_config={"session.timeout.ms": self._session_timeout_ms,
                             "heartbeat.interval.ms": max(100, self._session_timeout_ms // 6)}
            if self._group_member else None,
        )
        self._runtime = runtime
        try:
            runtime.run(stop)
        finally:
            runtime.close()
            self._producer.flush()
        log.info("stopped", **self.counters.as_dict())
        return self.counters

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        if messages:
            self._applied_since_gap_check = True
        assert self._serials is not None
        with self._serials.batch():  # the batch's serial claims: one transaction
            self._process_batch(messages, self._pending)
        self._pending.consumed += len(messages)

    def checkpoint_due(self, now: float, polled: int) -> bool:
        # When the batch is big, old, or nothing more is arriving right now.
        pending = self._pending
        return pending.row_count >= self._flush_rows or bool(
            pending.consumed and (not polled or now - pending.since >= self._flush_seconds)
        )

    def write_sink(self) -> Done:
        """The history batch to the snapshot store (the runtime has flushed residents and dead letters)."""
        pending = self._pending
        if pending.row_count:
            crash_point(AFTER_PRODUCE)
        for muni, cols in pending.rows.items():
            pending.tables[muni].append(pa.Table.from_pydict(cols, schema=self._schema))
        for muni, tables in pending.tables.items():
            self._store.append_history(muni, pa.concat_tables(tables))
        if pending.row_count:
            crash_point(AFTER_HISTORY)
            self.last_applied_at = time.time()
        self._pending = _Pending()
        return ALL_DELIVERED

    def on_caught_up(self, now: float) -> None:
        self._report_gaps(now)

    def _gap_view(self, now: float) -> dict[str, MunicipalitySequence] | None:
        """The municipalities' sequences as the whole group applied them, or None when this process is not the
        one to say (partition 0 is not its own) or cannot say yet. Every process's state holds only part of a
        municipality's events, so a gap is judged on the history, once the group's committed offsets are at the
        end of every partition: the history then holds everything sent (offsets are committed only after
        the history is written)."""
        runtime = self._runtime
        if runtime is None or (self.topics.diffs, 0) not in runtime.assigned:
            return None
        if not self._group_member:
            return self.sequences  # every partition is this process's: its state is the whole truth
        if not self._applied_since_gap_check and not self._gap_open_since:
            return None
        if now - self._gap_checked_at < min(1.0, self._gap_grace):
            return None
        self._gap_checked_at = now
        if not runtime.group_committed_to_end() or not self._store.has_history():
            return None
        self._applied_since_gap_check = False
        con = duckdb.connect()
        rel = self._store.history_relation(con)
        return {muni: MunicipalitySequence.from_applied(seqs) for muni, seqs in con.execute(
            f"SELECT municipality_code, list(sequence ORDER BY sequence) FROM {rel} GROUP BY 1").fetchall()}

    def totals(self) -> Totals:
        return Totals(self.counters.applied, self.counters.dead_lettered)

    # -- a batch -----------------------------------------------------------------------------
    def _process_batch(self, messages: list[Message], pending: _Pending) -> None:
        """Messages in the current schema version are decoded together (schemas/arrow_decode.py);
        anything else, and any batch holding a malformed body, goes message by message."""
        fast: list[tuple[Message, bytes]] = []  # each value read once: Message.value() copies
        for msg, value in self._authentic(messages):
            if value is not None and len(value) > HEADER.size and value[: HEADER.size] == self._current_header:
                fast.append((msg, value))
            else:
                self._process(msg, pending)
        if not fast:
            return
        decoded = self._decoder.decode([value[HEADER.size :] for _, value in fast])
        if decoded is None:
            for msg, _ in fast:
                self._process(msg, pending)
            return
        self._apply_batch(fast, decoded, pending)

    def _apply_batch(self, batch: list[tuple[Message, bytes]], decoded: DecodedBatch, pending: _Pending) -> None:
        self.counters.consumed += len(batch)
        table = decoded.table
        after = table.column("after").combine_chunks()
        munis = table.column("municipality_code").to_pylist()
        codes = table.column("resident_code").to_pylist()
        seqs = table.column("sequence").to_pylist()
        types = table.column("change_type").to_pylist()
        present = after.is_valid().to_pylist()
        record_munis = after.field("municipality_code").to_pylist()
        record_codes = after.field("resident_code").to_pylist()
        numbers_valid = valid_individual_numbers(after.field("individual_number").to_pylist())
        current = [p and s == "CURRENT" for p, s in zip(present, after.field("status").to_pylist(), strict=True)]
        certificates = after.field("jpki_certificates")
        cert_bounds = certificates.offsets.to_pylist()
        serials = certificates.values.field("serial").to_pylist()
        munis_valid = {m: is_valid_municipality_code(m) for m in set(munis)}
        earliest, latest = event_time_window(dt.datetime.now(dt.UTC))
        times = table.column("event_time")
        times_plausible = pc.and_(pc.greater_equal(times, pa.scalar(earliest, times.type)),
                                  pc.less_equal(times, pa.scalar(latest, times.type))).to_pylist()
        oversized = _oversized_fields(after)
        # The Resident body starts after the wire header, the fields before `after` and its union branch byte.
        starts = (HEADER.size + decoded.field_start("after") + 1).tolist()
        resident_header = frame(self._resident_serde.schema_id, b"")
        applied: list[int] = []
        assert self._serials is not None
        # The current records' serials, whose holders the claims below read: in one statement at the first claim.
        self._serials.expect(s for i, c in enumerate(current) if c for s in serials[cert_bounds[i]:cert_bounds[i + 1]])
        # Validation first, in a loop of its own: it depends on no state, and the loop after it, which takes the
        # shared serial index's write lock at its first claim, stays short.
        keys = [msg.key() for msg, _ in batch]
        rejections = [validate_change_fields(
            municipality_code=munis[i], resident_code=codes[i], key=keys[i], sequence=seqs[i],
            change_type=types[i], event_time_plausible=times_plausible[i], record_present=present[i],
            record_municipality_code=record_munis[i], record_resident_code=record_codes[i],
            municipality_code_valid=munis_valid[munis[i]], individual_number_valid=bool(numbers_valid[i]),
            oversized_field=oversized[i],
        ) for i in range(len(batch))]
        for i, (msg, value) in enumerate(batch):
            key, rejection = keys[i], rejections[i]
            if rejection is not None:
                self._dead_letter(msg, rejection.code, rejection.reason)
                continue
            record_serials = serials[cert_bounds[i]:cert_bounds[i + 1]] if current[i] else []
            if self._admit(msg, munis[i], codes[i], seqs[i], current[i], record_serials):
                applied.append(i)
                if self._moves_forward(munis[i], codes[i], seqs[i]):
                    self._publish(resident_header + value[starts[i] :] if present[i] else None, key)
        if applied:
            self._add_history(table.take(pa.array(applied)), pending)

    def _add_history(self, changes: pa.Table, pending: _Pending) -> None:
        after = changes.column("after").combine_chunks()
        record = dict(zip([f.name for f in after.type], after.flatten(), strict=True))
        columns = {
            "sequence": changes.column("sequence"),
            "change_type": changes.column("change_type"),
            "event_time": changes.column("event_time"),
            "event_notified_on": changes.column("notified_on"),
            "sent_at": changes.column("sent_at"),
            "event_id": changes.column("event_id"),
            "removed": after.is_null(),
            **record,
            # A removal has no record: its codes come from the event.
            "municipality_code": changes.column("municipality_code"),
            "resident_code": changes.column("resident_code"),
        }
        history = pa.Table.from_arrays([columns[f.name] for f in self._schema], schema=self._schema)
        munis = pc.unique(history.column("municipality_code")).to_pylist()
        for muni in munis:
            part = history if len(munis) == 1 else history.filter(pc.equal(history.column("municipality_code"), muni))
            pending.tables[muni].append(part)
        pending.row_count += history.num_rows

    # -- one event ---------------------------------------------------------------------------
    def _process(self, msg: Message, pending: _Pending) -> None:
        self.counters.consumed += 1
        try:
            change = self._serde.decode(msg.value())
        except UnknownSchemaId as exc:
            return self._dead_letter(msg, "UNKNOWN_SCHEMA_ID", str(exc))
        except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
            return self._dead_letter(msg, "MALFORMED", f"not a readable ResidentChange: {type(exc).__name__}: {exc}")
        muni, rc, seq = change["municipality_code"], change["resident_code"], change["sequence"]
        after = change["after"]
        current = after is not None and after["status"] == "CURRENT"
        serials = [c["serial"] for c in after["jpki_certificates"]] if current else []
        rejection = validate_change(change, msg.key(), dt.datetime.now(dt.UTC))
        if rejection is not None:
            return self._dead_letter(msg, rejection.code, rejection.reason)
        if not self._admit(msg, muni, rc, seq, current, serials):
            return None
        self._add_history_row(change, pending)
        if self._moves_forward(muni, rc, seq):
            # Encoded anew: here nothing proves where the record's bytes start (an older writer version,
            # or a batch that was refused, perhaps for an encoding that is valid but not canonical).
            resident = None if change["after"] is None else self._resident_serde.encode(change["after"])
            self._publish(resident, msg.key())
        return None

    def _authentic(self, messages: list[Message]) -> list[tuple[Message, bytes | None]]:
        """The messages signed by a registered key of the municipality they are about, with their values;
        the others are dead-lettered before anything reads their bytes (infra.register_signing)."""
        authentic = []
        for msg in messages:
            value = msg.value()
            rejection = self._verifier.check(msg.key(), value, msg.headers())
            if rejection is None:
                authentic.append((msg, value))
            else:
                self.counters.consumed += 1
                self._dead_letter(msg, rejection.code, rejection.reason)
        return authentic

    def _admit(self, msg: Message, muni: str, rc: str, seq: int, current: bool, serials: list[str]) -> bool:
        """Sequence and serial checks: True to apply (new or filling a gap), False for a duplicate, a jump or a
        serial another current record holds (dead-lettered)."""
        sequence = self.sequences.setdefault(muni, MunicipalitySequence())
        rejection = sequence_out_of_reach(seq, sequence.contiguous)
        if rejection is not None and self._group_member:
            # This process's watermark holds only its share since the last recovery: first catch up with what
            # the other processes wrote (a rare path: a jump of millions).
            self._catch_up(muni, sequence)
            rejection = sequence_out_of_reach(seq, sequence.contiguous)
        if rejection is None and sequence.holds(seq):
            self.counters.duplicates += 1
            return False
        if rejection is None and seq > self._resident_seq.get((muni, rc), 0):
            rejection = self._claim_serials((muni, rc), current, serials)
        if rejection is not None:
            self._dead_letter(msg, rejection.code, rejection.reason)
            return False
        outcome = sequence.observe(seq)
        self.counters.applied += 1
        if outcome is Outcome.FILL:
            self.counters.gap_fills += 1
        return True

    def _catch_up(self, muni: str, sequence: MunicipalitySequence) -> None:
        """Add to the municipality's sequence state what the history holds above its watermark (every process's)."""
        if not self._store.has_history():
            return
        con = duckdb.connect()
        for (seq,) in con.execute(f"SELECT sequence FROM {self._store.history_relation(con)} "
                                  "WHERE municipality_code = ? AND sequence > ? ORDER BY sequence",
                                  [muni, sequence.contiguous]).fetchall():
            sequence.observe(seq)

    def _claim_serials(self, record: tuple[str, str], current: bool, serials: list[str]) -> Rejection | None:
        """A change that becomes its record's latest state: its serials against the shared holders
        (sinks.serial_index), only if it lists serials or the record held some (most changes touch neither)."""
        if not (current and serials) and record not in self._holding:
            return None
        assert self._serials is not None
        # A record outside `_holding` holds no serial: nothing to release (the common case of a full load).
        rejection = self._serials.claim(record, current, serials, holds=record in self._holding)
        if rejection is None:
            if current and serials:
                self._holding.add(record)
            else:
                self._holding.discard(record)
        return rejection

    def _moves_forward(self, muni: str, rc: str, seq: int) -> bool:
        """The latest state only moves forward: a late gap fill older than what we hold is history only."""
        if seq <= self._resident_seq.get((muni, rc), 0):
            return False
        self._resident_seq[(muni, rc)] = seq
        return True

    def _add_history_row(self, change: dict[str, Any], pending: _Pending) -> None:
        muni = change["municipality_code"]
        after = change["after"]
        cols = pending.rows[muni]
        cols["sequence"].append(change["sequence"])
        cols["change_type"].append(change["change_type"])
        cols["event_time"].append(change["event_time"])
        cols["event_notified_on"].append(change["notified_on"])
        cols["sent_at"].append(change["sent_at"])
        cols["event_id"].append(change["event_id"])
        cols["removed"].append(after is None)
        record = after if after is not None else {"municipality_code": muni, "resident_code": change["resident_code"]}
        for name in self._resident_fields:
            cols[name].append(record.get(name))
        pending.row_count += 1

    def _publish(self, resident: bytes | None, key: bytes | None) -> None:
        """bcl.residents: the record, or a tombstone (None) that compaction turns into a removal."""
        assert self._producer is not None
        kafka.produce(self._producer, self.topics.residents, resident, key, on_delivery=self._delivered)
        self.counters.residents_published += 1

    def _dead_letter(self, msg: Message, code: str, reason: str) -> None:
        assert self._dead_letters is not None
        self.counters.dead_lettered += 1
        self._dead_letters.send(msg, code, reason)

    # -- caught up -------------------------------------------------------------------------
    def _report_gaps(self, now: float) -> None:
        """Called when every partition is consumed to its end: what is still missing was not sent."""
        view = self._gap_view(now)
        if view is None:
            return
        for muni, seq in view.items():
            gaps = tuple(seq.gaps)
            if not gaps:
                self._gap_open_since.pop(muni, None)
            elif now - self._gap_open_since.setdefault(muni, now) < self._gap_grace:
                continue
            if gaps != self._gaps_reported.get(muni, ()):
                self._gaps_reported[muni] = gaps
                if gaps:
                    log.warning("gap", municipality=muni, missing=seq.missing, first_missing=gaps[0][0],
                                ranges=len(gaps))
                else:
                    log.info("gap_closed", municipality=muni)


def _oversized_fields(after: pa.StructArray) -> list[str | None]:
    """Per record, the first field over its limit (domain.register_validation), vectorised: the batch's
    form of `oversized_field`, in the same order."""
    def column(path: str) -> pa.Array:
        array: pa.Array = after
        for part in path.split("."):
            array = array.field(part)
        return array

    checks = [(path, pc.utf8_length(column(path)), limit) for path, limit in TEXT_LIMITS.items()]
    checks.append((SEAL_IMAGE, pc.binary_length(column(SEAL_IMAGE)), MAX_SEAL_IMAGE_BYTES))
    checks += [(name, pc.list_value_length(column(name)), limit) for name, limit in ITEM_LIMITS.items()]
    found: list[str | None] = [None] * len(after)
    for path, lengths, limit in reversed(checks):  # the first failing check of the order wins
        over = pc.fill_null(pc.greater(lengths, limit), False)
        if pc.any(over).as_py():
            for i in pc.indices_nonzero(over).to_pylist():
                found[i] = path
    return found


_EVENT_COLUMNS = {"sequence", "change_type", "event_time", "event_notified_on", "sent_at", "event_id", "removed"}
