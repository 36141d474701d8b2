"""The snapshot store: the backup's change history, from which any past instant can be rebuilt.

Each applied change is one row: the event's metadata plus the full record after it (the Resident
fields, nested as in the contract). Rows are written in batches as Parquet files partitioned by
municipality (hive layout: register_history/municipality_code=XXXXXX/part-*.parquet); a file is
written under a temporary name and renamed, so a reader or a restarted materialiser never sees half
a batch. The files hold the register: mode 0600 in 0700 folders (infra.private_files).

Writers: the materialiser's processes, or an operator's resync (which sets aside a municipality's events
from a sequence number on, `set_aside_history`). The materialiser's processes share the store's writer lock
(`writer_lock(shared=True)`); a resync holds it alone, so it never runs beside any of them. Among the
materialiser's processes, each input partition of bcl.register.diffs has one writer at a time: a process
holds the partition's lock (`partition_lock`, an flock under writers/) from before it rebuilds the partition's
state until after its last write of what it read there, so a partition's next owner waits for the previous
one (or its death, which releases the lock) and then sees all it wrote. Every batch goes to a part file of its
own (a unique name, written then renamed), so concurrent writers never touch the same file.

Checkpoints (register_checkpoints/municipality_code=XXXXXX/checkpoint-<instant ms>-<id>.parquet, written by
`bcl backup checkpoint` beside the materialiser, sinks.register_checkpoints): a municipality's register
compacted, the latest change of every record (removals included) among the history parts the checkpoint
names as covered. Its instant is the latest event time of those parts. They are changed under the checkpoint
lock, never the writer lock, so writing one never blocks ingest; a resync, which rewrites a partition, deletes
the municipality's checkpoints under it before its rows change.

Every file is encrypted with a version of its municipality's key (sinks.encrypted_parquet, infra.snapshot_keys),
which its name records (part-<id>.k<version>.parquet); `reencrypt` rewrites a municipality's files with its
current version, after which older versions can be retired. Files without a version in the name are plain ones
from before encryption: read as they are until `reencrypt` rewrites them."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from domain.errors import BclError
from infra import topics
from infra.private_files import create_private_file, private_folder, private_output
from infra.snapshot_keys import KeyFileKeyring, SnapshotKey, SnapshotKeyError, SnapshotKeySource
from schemas.arrow_schema import arrow_schema
from schemas.contracts import CONTRACTS, expanded_schema
from sinks import encrypted_parquet
from sinks.encrypted_parquet import key_version, unversioned_stem, versioned_name
from sinks.serial_index import SerialIndex

# Metadata of the change that produced each history row, before the record's own fields.
EVENT_FIELDS = pa.schema([
    pa.field("sequence", pa.int64(), nullable=False),
    pa.field("change_type", pa.string(), nullable=False),
    pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("event_notified_on", pa.date32(), nullable=False),
    pa.field("sent_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("removed", pa.bool_(), nullable=False),
])


def resident_arrow_schema() -> pa.Schema:
    return arrow_schema(expanded_schema(CONTRACTS[topics.RESIDENTS]))


def history_schema() -> pa.Schema:
    """History row: event fields, then the Resident fields (municipality_code and resident_code
    are always set; the others are null on a removal). municipality_code is the partition column."""
    resident = resident_arrow_schema()
    fields = list(EVENT_FIELDS)
    for f in resident:
        fields.append(f.with_nullable(f.name not in ("municipality_code", "resident_code")))
    return pa.schema(fields)


def latest_changes(relation: str, where: str = "TRUE") -> str:
    """SQL for the latest change of every record (municipality, resident code) among the history rows of
    `relation` that satisfy `where`: one history row per record, removals included (filter `NOT removed`
    for the records that exist). Every reader of "the current record" uses this one statement.

    Why a semi-join on the sequence and not a window: sequence numbers are unique within a municipality
    (the materialiser applies each once, see domain.sequencing), so the latest change of a record is the
    row with its municipality's max(sequence) for that resident: a hash aggregate over two columns instead
    of sorting every row. `where` may use the history columns and query parameters ($name)."""
    return f"""
        SELECT history.* FROM {relation} AS history
        SEMI JOIN (
            SELECT municipality_code, max(sequence) AS sequence FROM {relation}
            WHERE {where} GROUP BY municipality_code, resident_code
        ) AS latest USING (municipality_code, sequence)
        WHERE {where}"""


@dataclass(frozen=True)
class Checkpoint:
    """A compacted register of one municipality: for every record, its latest change among the history
    parts in `covered` (all their rows have event_time at or before `instant`)."""

    municipality_code: str
    path: Path
    instant: dt.datetime  # the latest event time of the covered parts
    earliest: dt.datetime  # the earliest event time of the covered parts
    covered: frozenset[str]  # names of the history part files it compacts


CHECKPOINT_KEY = "bcl.checkpoint"  # the key-value metadata of a checkpoint file


class SnapshotStoreBusyError(BclError):
    """Another process holds the writer lock of the snapshot store."""


class BaseSnapshotStore(Protocol):
    keys: SnapshotKeySource  # the municipalities' encryption keys (infra.snapshot_keys)
    cipher: encrypted_parquet.Cipher  # encrypts and decrypts the files with them

    def append_history(self, municipality_code: str, batch: pa.Table) -> None:
        """Durably add a batch of history rows of one municipality (all or nothing)."""
        ...

    def history_relation(self, con: duckdb.DuckDBPyConnection) -> str:
        """A SQL table expression over all history rows, usable in FROM on this connection."""
        ...

    def read_files(self, con: duckdb.DuckDBPyConnection, paths: list[Path]) -> str:
        """A SQL table expression over these files of the store (history parts, checkpoints), on `con`."""
        ...

    def write_key(self, municipality_code: str) -> SnapshotKey | None:
        """The key new files of the municipality are encrypted with (None: a plaintext store, bench/ only)."""
        ...

    def has_history(self) -> bool: ...

    def writer_lock(self, who: str, *, shared: bool = False) -> AbstractContextManager[None]: ...

    def partition_lock(self, topic: str, partition: int, who: str, *, timeout: float = 120.0) -> PartitionLock: ...

    def serial_index(self) -> SerialIndex: ...

    def serial_index_build_lock(self) -> AbstractContextManager[None]: ...

    def history_parts(self, municipality_code: str) -> list[Path]:
        """The municipality's history part files as they are now (each complete: written then renamed)."""
        ...

    def checkpoints(self, municipality_code: str) -> list[Checkpoint]:
        """The municipality's checkpoints, oldest instant first."""
        ...

    def checkpoint_lock(self, *, shared: bool) -> AbstractContextManager[None]: ...


class ParquetSnapshotStore:
    def __init__(self, root: Path, keys: SnapshotKeySource | None = None, *, plaintext: bool = False) -> None:
        """`keys`: the municipalities' key rings; by default the key files of the data dir `root` is in
        (Settings.snapshot_keys_dir: DATA_DIR/keys/snapshot-store beside DATA_DIR/snapshots). `plaintext`: new
        files are written plain, as before encryption; only for measuring what encryption costs (bench/), never
        from the settings."""
        self.root = root
        self.history_dir = root / "register_history"
        self.checkpoint_dir = root / "register_checkpoints"
        self.keys = keys if keys is not None else KeyFileKeyring(root.parent / "keys" / "snapshot-store")
        self.cipher = encrypted_parquet.Cipher(self.keys)
        self._plaintext = plaintext

    def write_key(self, municipality_code: str) -> SnapshotKey | None:
        return None if self._plaintext else self.keys.current_key(municipality_code)

    def append_history(self, municipality_code: str, batch: pa.Table) -> None:
        private_folder(self.root)  # the history is the register itself: 0700 folders, 0600 files
        part_dir = private_folder(self.history_dir / f"municipality_code={municipality_code}")
        key = self.write_key(municipality_code)
        with private_output(part_dir / versioned_name(f"part-{uuid.uuid4().hex}", key)) as tmp:
            # The partition column lives in the directory name, as in any hive-partitioned dataset.
            encrypted_parquet.write_table(batch.drop_columns(["municipality_code"]), tmp, self.cipher, key)

    def history_relation(self, con: duckdb.DuckDBPyConnection) -> str:
        parts = [p for code in self.history_municipalities() for p in self.history_parts(code)]
        if not parts:  # as before encryption: DuckDB says there is no file
            glob = (self.history_dir / "*" / "*.parquet").as_posix()
            return f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{'municipality_code': VARCHAR}})"
        return self.read_files(con, parts)

    def read_files(self, con: duckdb.DuckDBPyConnection, paths: list[Path]) -> str:
        return encrypted_parquet.scan(con, self.cipher, paths, {p: _municipality_of(p) for p in paths})

    def has_history(self) -> bool:
        return any(self.history_dir.glob("*/*.parquet"))

    def history_parts(self, municipality_code: str) -> list[Path]:
        return sorted((self.history_dir / f"municipality_code={municipality_code}").glob("*.parquet"))

    def history_municipalities(self) -> list[str]:
        return sorted(p.name.removeprefix("municipality_code=") for p in self.history_dir.glob("municipality_code=*")
                      if any(p.glob("*.parquet")))

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoints(self, municipality_code: str) -> list[Checkpoint]:
        found = []
        for path in sorted(self._checkpoint_partition(municipality_code).glob("checkpoint-*.parquet")):
            meta = encrypted_parquet.read_metadata(path, self.cipher, municipality_code)
            if CHECKPOINT_KEY.encode() not in meta:
                continue  # not one of ours: never trusted as a checkpoint
            info = json.loads(meta[CHECKPOINT_KEY.encode()])
            found.append(Checkpoint(municipality_code, path, _instant(info["instant_ms"]),
                                    _instant(info["earliest_ms"]), frozenset(info["covered"])))
        return sorted(found, key=lambda c: (c.instant, len(c.covered)))

    def publish_checkpoint(self, municipality_code: str, write: Callable[[Path, bytes, SnapshotKey | None], None],
                           instant: dt.datetime, earliest: dt.datetime, covered: frozenset[str], *,
                           keep: int) -> Checkpoint | None:
        """Add a checkpoint, written by `write(path, metadata, key)` (the records to the Parquet file `path`,
        encrypted with `key`, with `metadata` as its key-value metadata under CHECKPOINT_KEY), and keep the newest
        `keep`. None, and nothing added, if a covered part is no longer in the history: a resync rewrote the
        partition meanwhile, and the checkpoint may hold rows it set aside."""
        part_dir = self._checkpoint_partition(municipality_code)
        private_folder(self.root)
        private_folder(self.checkpoint_dir)
        private_folder(part_dir)
        key = self.write_key(municipality_code)
        path = part_dir / versioned_name(f"checkpoint-{_millis(instant):014d}-{uuid.uuid4().hex[:12]}", key)
        pending = part_dir / f".pending-{path.name}"  # not a checkpoint's name: no reader takes it
        info = {"instant_ms": _millis(instant), "earliest_ms": _millis(earliest), "covered": sorted(covered)}
        try:
            with private_output(pending) as tmp:  # written outside the lock: it takes as long as the register
                write(tmp, json.dumps(info).encode(), key)
            with self.checkpoint_lock(shared=False):  # published under it, against a resync
                if not covered <= {p.name for p in self.history_parts(municipality_code)}:
                    return None
                pending.replace(path)
                for old in self.checkpoints(municipality_code)[:-keep]:
                    old.path.unlink()
        finally:
            pending.unlink(missing_ok=True)
        return next(c for c in self.checkpoints(municipality_code) if c.path == path)

    @contextmanager
    def checkpoint_lock(self, *, shared: bool) -> Iterator[None]:
        """Shared while a restore reads a checkpoint; exclusive while checkpoints are added, pruned or
        deleted. Blocking: each holder keeps it for the time of one file operation or one restore. A reader
        never creates the lock file (a restore writes nothing in the store): without it there has never been a
        checkpoint to prune or delete."""
        path = self.root / "checkpoints.lock"
        if shared and not path.exists():
            yield
            return
        with (path.open("r") if shared else create_private_file(path).open("a+")) as f:
            fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _checkpoint_partition(self, municipality_code: str) -> Path:
        return self.checkpoint_dir / f"municipality_code={municipality_code}"

    @contextmanager
    def writer_lock(self, who: str, *, shared: bool = False) -> Iterator[None]:
        """Hold the store's writer lock (an flock, released when the process ends however it ends), or
        raise SnapshotStoreBusyError naming who holds it. Shared: with other holders of the shared lock (the
        materialiser's processes, each partition of which has its own lock, `partition_lock`)."""
        path = create_private_file(self.root / "history.lock")  # it names who holds it
        with path.open("a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise SnapshotStoreBusyError(
                    f"the backup in {self.root} is being written by {holder}: stop it first") from None
            name = f"{who} (one or more processes)" if shared else f"{who} (pid {os.getpid()})"
            f.seek(0)
            if f.read() != name:  # the shared holders all write the same name
                f.seek(0)
                f.truncate()
                f.write(name)
                f.flush()
            try:
                unfinished = self.interrupted_resyncs()
                if unfinished and who != RESYNC:
                    raise SnapshotStoreBusyError(
                        f"a resync of {', '.join(unfinished)} was interrupted: run `bcl backup resync --municipality "
                        f"{unfinished[0]}` again to complete it")
                yield
            finally:
                if not shared:
                    f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def partition_lock(self, topic: str, partition: int, who: str, *, timeout: float = 120.0) -> PartitionLock:
        """Become the one writer of what is read from this input partition: waits (up to `timeout` seconds) while
        another process holds it, the previous owner finishing its last checkpoint."""
        folder = private_folder(private_folder(self.root) / "writers")
        path = create_private_file(folder / f"{topic}-{partition}.lock")
        f = path.open("a+", encoding="utf-8")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    holder = f.read().strip() or "another process"
                    f.close()
                    raise SnapshotStoreBusyError(
                        f"partition {partition} of {topic} is still written by {holder} after {timeout:g} s") from None
                time.sleep(0.05)
        f.seek(0)
        f.truncate()
        f.write(f"{who} (pid {os.getpid()})")
        f.flush()
        return PartitionLock(f)

    def serial_index(self) -> SerialIndex:
        """The certificate serials' holders the materialiser's processes share (sinks.serial_index)."""
        return SerialIndex(private_folder(self.root) / "serial_holders.sqlite")

    @contextmanager
    def serial_index_build_lock(self) -> Iterator[None]:
        """Held while the serial index is checked and, if it never was, built: the first process builds it,
        the others wait (blocking; a build reads the current records once)."""
        with create_private_file(self.root / "serial_holders.lock").open("a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def interrupted_resyncs(self) -> list[str]:
        return sorted(p.name.removesuffix("-new") for p in self._resync_dir.glob("*-new"))

    def set_aside_history(self, municipality_code: str, from_sequence: int) -> tuple[pa.Table, Path | None]:
        """Take a municipality's history rows with sequence >= from_sequence out of the backup, into a
        file of their own under set_aside/ (owner-only: personal data). Returns the rows and that file
        (None when there were none). The caller holds the writer lock.

        The partition is replaced by directory renames, never rewritten in place: a reader sees the old
        rows or the new ones. If interrupted, running it again completes it (a new partition waiting in
        resync/ replaces the old one; then the rows from `from_sequence` on are set aside, if any remain)."""
        part_dir = self.history_dir / f"municipality_code={municipality_code}"
        with self.checkpoint_lock(shared=False):
            # Before any row changes: a checkpoint compacts rows that may be set aside, and the rewritten
            # partition's one new part is covered by none of them.
            shutil.rmtree(self._checkpoint_partition(municipality_code), ignore_errors=True)
            return self._set_aside(part_dir, municipality_code, from_sequence)

    def _set_aside(self, part_dir: Path, municipality_code: str, from_sequence: int) -> tuple[pa.Table, Path | None]:
        new_dir, old_dir = self._resync_dir / f"{municipality_code}-new", self._resync_dir / f"{municipality_code}-old"
        if new_dir.exists():
            if part_dir.exists() and not old_dir.exists():  # interrupted before the swap: start again
                shutil.rmtree(new_dir)
            else:
                if part_dir.exists():
                    part_dir.rename(old_dir)
                new_dir.rename(part_dir)
        shutil.rmtree(old_dir, ignore_errors=True)
        parts = sorted(part_dir.glob("*.parquet"))
        if not parts:
            return pa.table({}), None
        history = pa.concat_tables([encrypted_parquet.read_table(p, self.cipher, municipality_code) for p in parts],
                                   promote_options="default")
        later = pc.greater_equal(history.column("sequence"), from_sequence)
        removed = history.filter(later)
        if not removed.num_rows:
            return removed, None
        removed = removed.append_column("municipality_code", pa.array([municipality_code] * removed.num_rows))
        aside_dir = self.root / "set_aside"
        aside_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self.write_key(municipality_code)
        aside = aside_dir / versioned_name(f"{municipality_code}-from-{from_sequence}-{uuid.uuid4().hex[:8]}", key)
        with private_output(aside) as tmp:
            encrypted_parquet.write_table(removed, tmp, self.cipher, key)
        new_dir.mkdir(mode=0o700, parents=True)
        kept = history.filter(pc.invert(later))
        if kept.num_rows:
            kept_part = new_dir / versioned_name(f"part-{uuid.uuid4().hex}", key)
            encrypted_parquet.write_table(kept, kept_part, self.cipher, key)
        part_dir.rename(old_dir)
        new_dir.rename(part_dir)
        shutil.rmtree(old_dir)
        return removed, aside

    @property
    def _resync_dir(self) -> Path:
        return self.root / "resync"

    # -- keys ----------------------------------------------------------------------------------------
    def set_aside_files(self, municipality_code: str) -> list[Path]:
        return sorted((self.root / "set_aside").glob(f"{municipality_code}-from-*.parquet"))

    def key_versions_in_use(self, municipality_code: str) -> dict[int | None, int]:
        """How many files of the municipality each key version encrypts (None: plain files)."""
        files = [*self.history_parts(municipality_code), *self.set_aside_files(municipality_code),
                 *self._checkpoint_partition(municipality_code).glob("checkpoint-*.parquet")]
        used: dict[int | None, int] = {}
        for path in files:
            used[key_version(path)] = used.get(key_version(path), 0) + 1
        return used

    def reencrypt(self, municipality_code: str) -> int:
        """Rewrite every file of the municipality not encrypted with its current key version (plain files
        included) with that version; returns how many. The caller holds the writer lock.

        The history partition is replaced by directory renames, as a resync does: a reader sees the old files
        or the new ones, never both (which would count rows twice). Checkpoints name the parts they cover, so
        each is rewritten with the new names. If interrupted, running it again completes it."""
        key = self.keys.current_key(municipality_code)
        part_dir = self.history_dir / f"municipality_code={municipality_code}"
        new_dir = self.root / "reencrypt" / f"{municipality_code}-new"
        old_dir = new_dir.with_name(f"{municipality_code}-old")
        with self.checkpoint_lock(shared=False):
            if new_dir.exists() and not part_dir.exists():  # interrupted between the two renames
                new_dir.rename(part_dir)
            shutil.rmtree(new_dir, ignore_errors=True)
            shutil.rmtree(old_dir, ignore_errors=True)
            renamed: dict[str, str] = {}
            stale = [p for p in self.history_parts(municipality_code) if key_version(p) != key.version]
            if stale:
                private_folder(new_dir.parent)
                shutil.copytree(part_dir, new_dir)  # the parts already current are kept as they are
                for old in stale:
                    name = versioned_name(unversioned_stem(old), key)
                    table = encrypted_parquet.read_table(old, self.cipher, municipality_code)
                    encrypted_parquet.write_table(table, new_dir / name, self.cipher, key)
                    (new_dir / old.name).unlink()
                    renamed[old.name] = name
                part_dir.rename(old_dir)
                new_dir.rename(part_dir)
                shutil.rmtree(old_dir)
            rewritten = len(stale)
            for checkpoint in self.checkpoints(municipality_code):
                if key_version(checkpoint.path) == key.version and not renamed.keys() & checkpoint.covered:
                    continue
                table = encrypted_parquet.read_table(checkpoint.path, self.cipher, municipality_code)
                info = json.loads(table.schema.metadata[CHECKPOINT_KEY.encode()])
                info["covered"] = sorted(renamed.get(name, name) for name in info["covered"])
                table = table.replace_schema_metadata({CHECKPOINT_KEY: json.dumps(info)})
                with private_output(checkpoint.path.with_name(versioned_name(unversioned_stem(checkpoint.path),
                                                                             key))) as tmp:
                    encrypted_parquet.write_table(table, tmp, self.cipher, key)
                if key_version(checkpoint.path) != key.version:
                    checkpoint.path.unlink()
                rewritten += 1
            for aside in self.set_aside_files(municipality_code):
                if key_version(aside) != key.version:
                    with private_output(aside.with_name(versioned_name(unversioned_stem(aside), key))) as tmp:
                        encrypted_parquet.write_table(
                            encrypted_parquet.read_table(aside, self.cipher, municipality_code), tmp, self.cipher, key)
                    aside.unlink()
                    rewritten += 1
        return rewritten

    def retire_key(self, municipality_code: str, version: int) -> None:
        """Remove a key version from the municipality's key ring, refused while a file still needs it."""
        if not isinstance(self.keys, KeyFileKeyring):
            raise SnapshotKeyError("this key source retires its keys itself (the KMS)")
        used = self.key_versions_in_use(municipality_code).get(version, 0)
        if used:
            raise SnapshotKeyError(f"key version {version} of {municipality_code} still encrypts {used} files: run "
                                   f"`bcl backup reencrypt --municipality {municipality_code}` first")
        self.keys.retire(municipality_code, version)


RESYNC = "bcl backup resync"


class PartitionLock:
    """A held `partition_lock`: released by `release`, or by the process's end however it ends."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def _millis(instant: dt.datetime) -> int:
    return (instant - _EPOCH) // dt.timedelta(milliseconds=1)  # exact: history times are whole milliseconds


def _instant(millis: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=millis)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _municipality_of(path: Path) -> str:
    """The municipality of a history part or checkpoint, from its partition folder (municipality_code=…)."""
    return path.parent.name.removeprefix("municipality_code=")
