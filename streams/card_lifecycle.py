"""The card lifecycle: register changes the backup accepted → JPKI certificates issued and revoked.

Issuing, renewing and revoking a card flows through the register: the after-image of every change
lists the resident's current certificate serials (docs/domain.md §2.2). This processor keeps the test
PKI (certgen.pki_directory) in step with it: a serial new to a resident is issued (its key from the
shared KeyPool, so the kiosk simulator can build the virtual card for that serial), a serial that
leaves is revoked with the reason of domain.card_lifecycle, and each revocation is published
on bcl.jpki.revocations (keyed by serial) for the CRL and OCSP consumers.

Design (why not simply keep "the previous serials per resident" in memory):
- It acts only on what the backup has accepted. It consumes bcl.register.diffs with its own group
  but only below the materialiser group's committed offsets (read, never written, through a second
  consumer of that group): the materialiser commits only after writing its history, so every event
  below that watermark is either in the snapshot store or was rejected (dead letter, duplicate).
  A partition that reaches the watermark is paused until the backup moves on.
- The resident's certificates before an event come from the snapshot store: the history row of the
  same resident with the highest sequence below the event's (one DuckDB query per batch). The event
  is accepted when the history holds a row with its municipality, sequence and event id, and what it
  acts on (change type, time, status, certificates) is that row, never the message: a forged copy of
  an accepted event (the materialiser dead-letters it, as its signature fails) changes nothing. So the
  answer does not depend on where this processor stopped, on restarts, on a new consumer group or on
  replays: the before-image is always the one the backup holds, and events the backup rejected
  (undecodable, invalid, duplicates) are skipped. No in-memory state has to be rebuilt.
- Idempotent through the PKI: a serial already issued is not issued again; a revocation is
  published and recorded only when the PKI has no revocation of that serial yet (or only a later
  one: the earliest revocation stands, certgen.revocation.merge_revocation). A serial to revoke
  that the PKI never issued (e.g. a PKI set up after the events left the topic) is issued first so
  that the CRL and OCSP can report it revoked.

Durability order per batch: (1) issue certificates (PKI index), (2) publish the new revocations
and flush, (3) record them in the PKI index, (4) commit offsets (2-4: the checkpoint of
infra.processor_runtime, with explicit offsets, as a held partition's position may be past messages
it will read again). A crash before (3) re-publishes
the same revocation on restart (same key and value; consumers fold with earliest-wins); a crash
before (4) replays events that (1) and (3) recognise as done. Revocation times are event times, so
a CRL issued as of an instant lists exactly the register's revocations up to it.

Limitation: a resident's events are applied in the order they arrive; an event the adapter sends
again to fill a gap after later events of the same resident were processed is applied against its
history predecessor, but the later events are not re-evaluated.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import structlog
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from certgen.errors import DuplicateSerialError, PkiError
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.revocation import Revocation, merge_revocation, revocation_to_record
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import CertificateEntry, RevocationReason, card_actions, entries, validity_instants
from domain.certificate_serial import parse_serial
from infra import kafka, topics
from infra.metrics import Totals
from infra.processor_runtime import BatchHandler, Done, LoopOptions, Output, Partitions, ProcessorRuntime, Source
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from sinks.encrypted_parquet import release
from sinks.snapshot_store import BaseSnapshotStore
from streams import materialiser

log = structlog.get_logger("card_lifecycle")

PROCESSOR = "card-lifecycle"
# The pool the virtual cards' keys come from (Settings.key_pool_dir): `bcl pki key-pool` makes it, and the
# kiosk simulator builds the card of a serial with the same pool's key_for_serial(serial).
DEFAULT_KEY_POOL_SIZE = 256
_UNCOMMITTED = 0  # a group without a committed offset has accepted nothing


def certificate_validity(entry: CertificateEntry) -> tuple[dt.datetime, dt.datetime]:
    """The register's validity days of the entry as certificate times (domain.card_lifecycle)."""
    return validity_instants(entry.not_before, entry.not_after)


@dataclass(frozen=True)
class CardLifecycleTopics:
    """Where the processor reads and writes; the catalogue's topics unless a test isolates itself."""

    diffs: str = topics.REGISTER_DIFFS
    revocations: str = topics.JPKI_REVOCATIONS


@dataclass
class Counters:
    consumed: int = 0
    not_in_backup: int = 0  # unreadable, rejected or duplicate: the backup did not apply it
    changes: int = 0  # accepted changes that touched certificates
    issued: int = 0
    already_issued: int = 0
    revoked: int = 0
    already_revoked: int = 0
    refused: int = 0  # a serial or validity the PKI cannot certify (logged)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _applied_change(municipality_code: str, sequence: int, event_id: str, resident_code: str, change_type: str,
                    event_time: dt.datetime, removed: bool, status: str | None, deletion_reason: str | None,
                    certificates: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The change as the backup applied it (its history row), in the shape of a ResidentChange."""
    after = None if removed else {"status": status, "deletion_reason": deletion_reason,
                                  "jpki_certificates": certificates or []}
    return {"municipality_code": municipality_code, "resident_code": resident_code, "sequence": sequence,
            "event_id": event_id, "change_type": change_type, "event_time": event_time.astimezone(dt.UTC),
            "after": after}


@dataclass(frozen=True)
class _Accepted:
    change: dict[str, Any]
    before: tuple[CertificateEntry, ...]


class CardLifecycleProcessor(BatchHandler):
    def __init__(
        self,
        bootstrap_servers: str,
        registry: BaseSchemaRegistry,
        store: BaseSnapshotStore,
        pki: PkiDirectory,
        key_pool: KeyPool,
        *,
        group_id: str = PROCESSOR,
        backup_group_id: str = materialiser.PROCESSOR,
        batch_size: int = 5000,
        watermark_seconds: float = 0.5,
        topic_names: CardLifecycleTopics = CardLifecycleTopics(),
    ) -> None:
        self.topics = topic_names
        self._serde = AvroSerde(registry, CONTRACTS[topics.REGISTER_DIFFS])
        self._revocation_serde = AvroSerde(registry, CONTRACTS[topics.JPKI_REVOCATIONS])
        self._store = store
        self._pki = pki
        self._keys = key_pool
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._backup_group_id = backup_group_id
        self._batch_size = batch_size
        self._watermark_seconds = watermark_seconds
        self.counters = Counters()
        self._con = duckdb.connect()
        self._producer: Producer | None = None
        self._delivered = kafka.DeliveryTracker()
        self._backup: Consumer | None = None
        self._watermarks: dict[int, int] = {}
        self._refreshed = 0.0
        self._done: list[Message] = []
        self._publishing: list[Revocation] = []

    # -- the loop (infra.processor_runtime drives it; this class is its handler) -------------
    def run(
        self, stop: threading.Event | None = None, *, until_caught_up: bool = False, idle_seconds: float = 1.0
    ) -> Counters:
        """Process until stopped (or, with until_caught_up, until every partition is at its end or
        at what the backup has accepted, and nothing arrived for idle_seconds)."""
        self._pki.auth_authority()  # fail now, with the `bcl pki init` hint, if the PKI is missing
        self._keys.load()
        self._backup = kafka.make_consumer(self._bootstrap, self._backup_group_id)  # read its offsets only
        self._producer = kafka.make_producer(self._bootstrap)
        self._watermarks = {}
        runtime = ProcessorRuntime(
            self._group_id, self._bootstrap, Source((self.topics.diffs,)), self,
            LoopOptions(batch_size=self._batch_size, poll_timeout=0.5, until_caught_up=until_caught_up,
                        idle_seconds=idle_seconds),
            output=Output(self._producer, self._delivered, "revocations"),
        )
        try:
            runtime.run(stop)
        finally:
            runtime.close()
            self._backup.close()
            self._producer.flush()
        log.info("stopped", **self.counters.as_dict())
        return self.counters

    def _watermark(self, partitions: Sequence[tuple[str, int]]) -> dict[int, int]:
        """Per partition, the offset below which the backup materialiser has applied everything."""
        assert self._backup is not None
        committed = self._backup.committed([TopicPartition(t, p) for t, p in partitions], timeout=30)
        return {tp.partition: tp.offset if tp.offset >= 0 else _UNCOMMITTED for tp in committed}

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        """Only below the backup's watermark: a partition that reaches it is held until the backup moves on."""
        now = time.monotonic()
        if not self._watermarks or (partitions.held and now - self._refreshed >= self._watermark_seconds):
            self._watermarks = self._watermark(partitions.assigned)
            self._refreshed = now
            released = [tp for tp, offset in partitions.held.items() if self._watermarks[tp[1]] > offset]
            if released:
                partitions.release(released)
        accepted: list[Message] = []
        for msg in messages:
            if (msg.topic(), msg.partition()) in partitions.held:
                continue  # later messages of a partition waiting for the backup
            if msg.offset() >= self._watermarks[msg.partition()]:
                partitions.hold(msg)
                continue
            accepted.append(msg)
        if accepted:
            self._process(accepted)
        self._done = accepted

    def checkpoint_due(self, now: float, polled: int) -> bool:
        return bool(self._done)

    def write_sink(self) -> Done:
        """Record the revocations in the PKI index, once the runtime has delivered them on the topic."""
        for revocation in self._publishing:
            self._pki.revoke(revocation)
            self.counters.revoked += 1
        self._publishing = []
        done, self._done = self._done, []
        return done

    def totals(self) -> Totals:
        return Totals(self.counters.consumed - self.counters.not_in_backup)

    # -- one batch ---------------------------------------------------------------------------
    def _process(self, messages: list[Message]) -> None:
        self.counters.consumed += len(messages)
        changes = []
        for msg in messages:
            try:
                changes.append(self._serde.decode(msg.value()))
            except Exception:  # foreign bytes the materialiser dead-lettered: nothing to act on
                self.counters.not_in_backup += 1
        pending: dict[str, Revocation] = {}
        for item in self._accepted(changes):
            self._apply(item, pending)
        self._revoke(pending)

    def _accepted(self, changes: list[dict[str, Any]]) -> list[_Accepted]:
        """The changes the backup applied, each with the resident's certificates before it."""
        if not changes or not self._store.has_history():
            self.counters.not_in_backup += len(changes)
            return []
        keys = pa.table({
            "m": [c["municipality_code"] for c in changes],
            "r": [c["resident_code"] for c in changes],
            "s": pa.array([c["sequence"] for c in changes], pa.int64()),
            "e": [c["event_id"] for c in changes],
        })
        self._con.register("batch_keys", keys)
        try:
            rows = self._con.execute(f"""
                WITH h AS (
                    SELECT municipality_code AS m, sequence AS s, event_id AS e, resident_code, change_type,
                           event_time, removed, status, deletion_reason, jpki_certificates,
                           lag(jpki_certificates) OVER (PARTITION BY municipality_code, resident_code
                                                        ORDER BY sequence) AS before
                    FROM {self._store.history_relation(self._con)}
                    WHERE municipality_code IN (SELECT DISTINCT m FROM batch_keys)
                      AND resident_code IN (SELECT DISTINCT r FROM batch_keys))
                SELECT h.m, h.s, h.e, h.before, h.resident_code, h.change_type, h.event_time, h.removed, h.status,
                       h.deletion_reason, h.jpki_certificates
                FROM h JOIN batch_keys k ON h.m = k.m AND h.s = k.s AND h.e = k.e
            """).fetchall()
        finally:
            self._con.unregister("batch_keys")
            release(self._con)  # the history's decrypting scans: made again for the next batch's files
        applied = {(m, s, e): _Accepted(_applied_change(m, s, e, *row), entries(before))
                   for m, s, e, before, *row in rows}
        accepted = []
        for c in changes:
            found = applied.get((c["municipality_code"], c["sequence"], c["event_id"]))
            if found is None:
                self.counters.not_in_backup += 1
            else:
                accepted.append(found)
        return accepted

    def _apply(self, item: _Accepted, pending: dict[str, Revocation]) -> None:
        change = item.change
        actions = card_actions(change["change_type"], item.before, change["after"])
        if not actions:
            return
        self.counters.changes += 1
        at = change["event_time"]
        muni = change["municipality_code"]
        for entry in actions.issue:
            try:
                issued = self._ensure_issued(entry, at)
            except PkiError as exc:  # a malformed serial or validity in a record the backup accepted
                self._refuse(change, exc)
                continue
            if issued:
                self.counters.issued += 1
            else:
                self.counters.already_issued += 1
        for entry, reason in actions.revoke:
            try:
                if self._ensure_issued(entry, at):
                    self.counters.issued += 1  # never seen issued: issue it so that it can be revoked
                revocation = Revocation(entry.serial, RevocationReason(reason), at, muni)
            except PkiError as exc:
                self._refuse(change, exc)
                continue
            pending[entry.serial] = merge_revocation(pending.get(entry.serial), revocation)

    def _ensure_issued(self, entry: CertificateEntry, at: dt.datetime) -> bool:
        """Issue the certificate unless the PKI already has it; True when it was issued now."""
        parse_serial(entry.serial)  # InvalidSerialError before the key pool sees it
        if self._pki.index.get(entry.serial) is not None:
            return False
        not_before, not_after = certificate_validity(entry)
        try:
            self._pki.issue_certificate(entry.serial, CertificateKind(entry.kind),
                                        self._keys.key_for_serial(entry.serial).public_key(), not_before, not_after,
                                        at)
        except DuplicateSerialError:  # issued meanwhile by another writer of the same PKI
            return False
        return True

    def _refuse(self, change: dict[str, Any], exc: Exception) -> None:
        self.counters.refused += 1
        log.warning("certificate_refused", municipality=change["municipality_code"], sequence=change["sequence"],
                    change_type=change["change_type"], error=str(exc))

    def _revoke(self, pending: dict[str, Revocation]) -> None:
        """Publish the revocations the PKI does not hold yet; they are recorded at the checkpoint, once
        delivered (durability order)."""
        assert self._producer is not None
        for serial, revocation in pending.items():
            current = self._pki.index.revocation(serial)
            if current is not None and merge_revocation(current, revocation) is current:
                self.counters.already_revoked += 1
                continue
            self._publishing.append(revocation)
            kafka.produce(self._producer, self.topics.revocations,
                          self._revocation_serde.encode(revocation_to_record(revocation)), serial.encode(),
                          on_delivery=self._delivered)
