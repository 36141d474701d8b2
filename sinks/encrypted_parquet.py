"""Encrypted Parquet files of the snapshot store (docs/architecture.md, "Encryption at rest").

Parquet modular encryption through pyarrow's CryptoFactory, uniform: every file gets its own random AES-256 data
key, which encrypts the footer (schema, row-group min/max statistics, key-value metadata) and every column, so a
file read without the key yields nothing: no value, no statistic, not even the column names. The data key is
stored in the file wrapped (AES-GCM) by a version of the municipality's key (infra.snapshot_keys), through
`KeyRingKms`, the KmsClient over the key ring; the file's key metadata names that version ("302066.v3"), and
so does its name: `part-<id>.k<version>.parquet`. A name without it is a plain file written before encryption,
read as plain until `bcl backup reencrypt` rewrites it.

Read by DuckDB as Arrow datasets that pyarrow decrypts (one per municipality and key version, registered on the
connection), so the restores, views and checkpoints stay the same DuckDB queries. Not DuckDB's own Parquet
encryption: it needs the file's key itself (no key wrapping, so one key for every file), its reader rejects the
nested columns pyarrow writes (the address, the seal, the tax records fail its tag check), and DuckDB 2.0 writes
encrypted Parquet only with the httpfs extension (its built-in crypto module is read-only), not installed here."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import re
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import BclError
from infra.snapshot_keys import SnapshotKey, SnapshotKeyError, SnapshotKeySource

_VERSIONED = re.compile(r"\.k([1-9][0-9]*)\.parquet$")
BATCH_ROWS = 128 * 1024  # one row group per batch of a query written to a file


class UnreadableFileError(BclError):
    """A file of the snapshot store does not open with the key its name says."""


def key_version(path: Path) -> int | None:
    """The key version a store file's name records; None for a plain file written before encryption."""
    found = _VERSIONED.search(path.name)
    return int(found.group(1)) if found else None


def versioned_name(stem: str, key: SnapshotKey | None) -> str:
    return f"{stem}.parquet" if key is None else f"{stem}.k{key.version}.parquet"


def unversioned_stem(path: Path) -> str:
    """The name without the key version and the suffix (the same file, re-encrypted, keeps it)."""
    return _VERSIONED.sub("", path.name).removesuffix(".parquet")


class KeyRingKms(pe.KmsClient):
    """The KmsClient pyarrow wraps and unwraps each file's data key with: AES-GCM under a version of the
    municipality's key. A master key id is "CODE.vVERSION"."""

    def __init__(self, keys: SnapshotKeySource) -> None:
        super().__init__()
        self._keys = keys

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> bytes:
        nonce = os.urandom(12)
        sealed = AESGCM(self._master(master_key_identifier).secret).encrypt(nonce, key_bytes, None)
        return base64.b64encode(nonce + sealed)

    def unwrap_key(self, wrapped_key: bytes, master_key_identifier: str) -> bytes:
        raw = base64.b64decode(wrapped_key)
        key = self._master(master_key_identifier)
        try:
            return AESGCM(key.secret).decrypt(raw[:12], raw[12:], None)
        except InvalidTag:
            raise SnapshotKeyError(
                f"the backup files of {key.municipality_code} do not open with version {key.version} of its key in "
                f"{self._keys.where(key.municipality_code)}: it does not match the files (restored from another "
                "backup?)") from None

    def _master(self, master_key_identifier: str) -> SnapshotKey:
        code, _, version = master_key_identifier.partition(".v")
        return self._keys.key(code, int(version))


def master_key_id(key: SnapshotKey) -> str:
    return f"{key.municipality_code}.v{key.version}"


# Double wrapping (pyarrow's default): a file's data key is wrapped by a key-encryption key, itself wrapped by the
# municipality's key through the KmsClient. The factory keeps the unwrapped key-encryption keys. Each writing
# process makes its own key-encryption key per key version (the materialiser's members, each run, a checkpoint),
# so the files of one version hold several. The KmsClient (Python) must never be called from DuckDB's scan
# threads: the thread that asks pyarrow for the next batch holds the interpreter while pyarrow's reader waits for
# the callback, and the query hangs. So `scan` opens the footer of every file it has not opened yet in the calling
# thread before DuckDB runs (a footer: a few kB), which puts every key-encryption key the files use in the cache.
# The keys stay cached for the life of the process.
KEY_CACHE_LIFETIME = dt.timedelta(days=366)


class Cipher:
    """Encryption and decryption properties of one key source (its CryptoFactory caches unwrapped keys)."""

    def __init__(self, keys: SnapshotKeySource) -> None:
        self.keys = keys
        self._factory = pe.CryptoFactory(lambda _config: KeyRingKms(keys))
        self._kms = pe.KmsConnectionConfig()
        self.opened: set[Path] = set()  # files whose footer was opened: their key-encryption keys are cached

    def encryption(self, key: SnapshotKey | None) -> pe.FileEncryptionProperties | None:
        if key is None:  # a plaintext store (bench/ only)
            return None
        config = pe.EncryptionConfiguration(footer_key=master_key_id(key), uniform_encryption=True,
                                            data_key_length_bits=256, cache_lifetime=KEY_CACHE_LIFETIME)
        return self._factory.file_encryption_properties(self._kms, config)

    def decryption(self) -> pe.FileDecryptionProperties:
        return self._factory.file_decryption_properties(
            self._kms, pe.DecryptionConfiguration(cache_lifetime=KEY_CACHE_LIFETIME))


def write_table(table: pa.Table, path: Path, cipher: Cipher, key: SnapshotKey | None) -> None:
    pq.write_table(table, path, compression="zstd", encryption_properties=cipher.encryption(key))


def write_query(con: duckdb.DuckDBPyConnection, cipher: Cipher, sql: str, path: Path, key: SnapshotKey | None,
                params: Mapping[str, Any] | None = None, metadata: Mapping[str, str] | None = None) -> int:
    """Write what `sql` answers to `path`, encrypted with `key`, streaming (never the whole result in memory);
    `metadata` goes to the file's key-value metadata (encrypted with the footer). Returns the rows written."""
    with warnings.catch_warnings():
        # execute(), not sql(): the caller's connection may hold an unfinished result, which execute() ends.
        # The copy DuckDB warns of is one batch at a time.
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        reader = con.execute(sql, dict(params or {})).to_arrow_reader(BATCH_ROWS)
    return write_batches(reader, reader.schema.with_metadata(dict(metadata or {})), path, cipher, key)


def write_batches(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema, path: Path, cipher: Cipher,
                  key: SnapshotKey | None) -> int:
    """Write these batches (of `schema`) to `path`, encrypted with `key`, one after the other. Returns the rows."""
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", encryption_properties=cipher.encryption(key)) as writer:
        for batch in batches:
            if isinstance(batch, pa.Table):
                writer.write_table(batch, row_group_size=max(batch.num_rows, 1))
            else:
                writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def iter_batches(path: Path, cipher: Cipher, municipality_code: str, columns: list[str] | None = None,
                 ) -> Iterator[pa.RecordBatch]:
    """A store file of the municipality, batch after batch in its rows' order (pyarrow, decrypting)."""
    version = key_version(path)
    _check_key(cipher, municipality_code, version)
    try:
        file = pq.ParquetFile(path, decryption_properties=None if version is None else cipher.decryption())
    except OSError as exc:
        raise _unreadable(path, municipality_code, version) from exc
    yield from file.iter_batches(batch_size=BATCH_ROWS, columns=columns)


def read_table(path: Path, cipher: Cipher, municipality_code: str, columns: list[str] | None = None,
               filters: Any = None) -> pa.Table:
    """A store file of the municipality, with pyarrow (small files: set aside rows, a resync's partition; or a
    few columns of a large one, `filters` a pyarrow expression on them)."""
    version = key_version(path)
    _check_key(cipher, municipality_code, version)
    try:
        return pq.read_table(path, columns=columns, filters=filters,
                             decryption_properties=None if version is None else cipher.decryption())
    except OSError as exc:
        raise _unreadable(path, municipality_code, version) from exc


def read_schema(path: Path, cipher: Cipher, municipality_code: str) -> pa.Schema:
    version = key_version(path)
    _check_key(cipher, municipality_code, version)
    try:
        return pq.read_schema(path, decryption_properties=None if version is None else cipher.decryption())
    except OSError as exc:
        raise _unreadable(path, municipality_code, version) from exc


def read_metadata(path: Path, cipher: Cipher, municipality_code: str) -> Mapping[bytes, bytes]:
    return read_schema(path, cipher, municipality_code).metadata or {}


def _check_key(cipher: Cipher, municipality_code: str, version: int | None) -> None:
    if version is not None:
        cipher.keys.key(municipality_code, version)  # a missing key file or version: its own clear message


def _unreadable(path: Path, municipality_code: str, version: int | None) -> UnreadableFileError:
    which = f"version {version} of the key of {municipality_code}" if version else "no key (a plain file)"
    return UnreadableFileError(f"{path} does not open with {which}: the key ring does not match the store "
                               "(restored from another backup?) or the file is damaged")


_scans: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, list[str]] = weakref.WeakKeyDictionary()
_scan_numbers = itertools.count()


def scan(con: duckdb.DuckDBPyConnection, cipher: Cipher, files: Iterable[Path],
         municipality_of: Mapping[Path, str]) -> str:
    """A SQL table expression over these files (hive-partitioned: municipality_code from the folder name), for
    use in FROM on `con`. Plain files are read by DuckDB; encrypted ones as an Arrow dataset that pyarrow
    decrypts, registered on `con` (`release` takes them off again)."""
    groups: dict[tuple[str, int | None], list[Path]] = {}
    for path in files:
        groups.setdefault((municipality_of[path], key_version(path)), []).append(path)
    if not groups:
        raise BclError("no file to read")  # callers check first; never an empty read_parquet([])
    scans = []
    for (code, version), paths in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        if version is None:
            listed = ", ".join(f"'{p.as_posix()}'" for p in paths)
            scans.append(f"read_parquet([{listed}], hive_partitioning = true, "
                         f"hive_types = {{'municipality_code': VARCHAR}})")
            continue
        # Every footer not opened yet, here (see KEY_CACHE_LIFETIME); a key that does not match fails here with a
        # clear message, not in the middle of a query.
        for path in paths:
            if path not in cipher.opened:
                read_metadata(path, cipher, code)
                cipher.opened.add(path)
        options = ds.ParquetFragmentScanOptions(decryption_properties=cipher.decryption())
        dataset = ds.dataset([p.as_posix() for p in paths], format=ds.ParquetFileFormat(
            default_fragment_scan_options=options), partition_base_dir=paths[0].parent.parent.as_posix(),
            partitioning=ds.partitioning(pa.schema([("municipality_code", pa.string())]), flavor="hive"))
        name = f"_bcl_scan_{next(_scan_numbers)}"
        con.register(name, dataset)
        _scans.setdefault(con, []).append(name)
        scans.append(name)
    if len(scans) == 1:
        return scans[0]
    return f"({' UNION ALL BY NAME '.join(f'SELECT * FROM {s}' for s in scans)})"


def release(con: duckdb.DuckDBPyConnection) -> None:
    """Take every dataset `scan` registered off `con`: after this, nothing on it reads a file of the store."""
    for name in _scans.pop(con, []):
        con.unregister(name)
