"""The snapshot store's encryption keys: one key ring per municipality, each key a numbered version.

Every Parquet file of the snapshot store is encrypted with a version of its municipality's key (sinks.
encrypted_parquet); the file's name records which. New files take the current version; a rotation adds a
version and makes it current, the older ones stay so that the files written with them stay readable until
they are re-encrypted (`bcl backup reencrypt`), after which an old version can be retired.

`SnapshotKeySource` is what the store asks for; `KeyFileKeyring` is the one implementation here: one JSON file
per municipality, mode 0600 in a 0700 folder of the data dir (as infra.data_dir_keys), made at random on the
municipality's first write. A deployment that keeps its keys in a KMS implements the same three methods over
it (the platform then holds no key on disk); the analysts never see a key either way: their DuckDB session is
built by the platform, which reads the files, and then loses access to any file (sinks.analytics).

File format: {"municipality": "302066", "current": 2, "keys": {"1": "<64 hex digits>", "2": "…"}}."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from domain.codes import is_valid_municipality_code
from domain.errors import BclError
from domain.secret_strength import secret_weakness
from infra.private_files import (
    FILE_MODE,
    create_private_file,
    write_private_file,
    write_private_file_once,
)

KEY_BYTES = 32  # AES-256


class SnapshotKeyError(BclError):
    """A municipality's key is missing, unreadable or refused."""


@dataclass(frozen=True)
class SnapshotKey:
    municipality_code: str
    version: int
    secret: bytes  # KEY_BYTES of key material: never logged, never in an error message

    def __repr__(self) -> str:  # a key printed by accident shows no key material
        return f"SnapshotKey({self.municipality_code}, version {self.version})"


class SnapshotKeySource(Protocol):
    def current_key(self, municipality_code: str) -> SnapshotKey:
        """The version new files of the municipality are written with (made on the first call)."""
        ...

    def key(self, municipality_code: str, version: int) -> SnapshotKey:
        """A given version, for reading a file written with it; SnapshotKeyError if it is not there."""
        ...

    def versions(self, municipality_code: str) -> list[int]: ...

    def where(self, municipality_code: str) -> str:
        """Where the municipality's keys are, for an error message ("the key file …")."""
        ...


class KeyFileKeyring:
    """The key rings as files in `folder` (DATA_DIR/keys/snapshot-store/CODE.json)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[tuple[str, int], SnapshotKey] = {}  # a version never changes once made

    def path(self, municipality_code: str) -> Path:
        if not is_valid_municipality_code(municipality_code):  # it becomes a file name
            raise SnapshotKeyError(f"{municipality_code!r} is not a municipality code")
        return self.folder / f"{municipality_code}.json"

    def where(self, municipality_code: str) -> str:
        return f"the key file {self.path(municipality_code)}"

    def current_key(self, municipality_code: str) -> SnapshotKey:
        ring = self._ring(municipality_code, create=True)
        return self._version(municipality_code, ring, ring["current"])

    def key(self, municipality_code: str, version: int) -> SnapshotKey:
        cached = self._cache.get((municipality_code, version))
        if cached is not None:
            return cached
        return self._version(municipality_code, self._ring(municipality_code, create=False), version)

    def versions(self, municipality_code: str) -> list[int]:
        try:
            return sorted(int(v) for v in self._ring(municipality_code, create=False)["keys"])
        except SnapshotKeyError:
            if not self.path(municipality_code).exists():
                return []
            raise

    def rotate(self, municipality_code: str) -> SnapshotKey:
        """Add a new random version and make it current; returns it."""
        with self._locked(municipality_code):
            ring = self._ring(municipality_code, create=True)
            version = max(int(v) for v in ring["keys"]) + 1
            ring["keys"][str(version)] = secrets.token_hex(KEY_BYTES)
            ring["current"] = version
            self._write(municipality_code, ring)
        return self._version(municipality_code, ring, version)

    def retire(self, municipality_code: str, version: int) -> None:
        """Remove a version that no file uses any more (the caller checks that: sinks.snapshot_store)."""
        with self._locked(municipality_code):
            ring = self._ring(municipality_code, create=False)
            if version == ring["current"]:
                raise SnapshotKeyError(f"key version {version} of {municipality_code} is the current one: rotate "
                                       "first (`bcl backup keys rotate`)")
            if str(version) not in ring["keys"]:
                raise SnapshotKeyError(f"the key ring of {municipality_code} ({self.path(municipality_code)}) "
                                       f"has no version {version}")
            del ring["keys"][str(version)]
            self._write(municipality_code, ring)
        self._cache.pop((municipality_code, version), None)

    # -- the file ----------------------------------------------------------------------------------
    def _ring(self, municipality_code: str, *, create: bool) -> dict:
        path = self.path(municipality_code)
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            if not create:
                raise SnapshotKeyError(f"no encryption key of municipality {municipality_code}: the key file {path} "
                                       "is missing (restore it from the key backup)") from None
            self._create(municipality_code)
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SnapshotKeyError(f"cannot read the key file {path} of municipality {municipality_code}: "
                                   f"{exc.__class__.__name__}") from None
        try:
            ring = json.loads(text)
            current, keys = int(ring["current"]), ring["keys"]
            if ring.get("municipality") != municipality_code or not isinstance(keys, dict) or str(current) not in keys:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise SnapshotKeyError(f"the key file {path} of municipality {municipality_code} is not a key ring "
                                   "(damaged or edited by hand)") from None
        if path.stat().st_mode & 0o777 != FILE_MODE:  # copied by hand: no one else may read it from now on
            os.chmod(path, FILE_MODE)
        return {"municipality": municipality_code, "current": current, "keys": dict(keys)}

    def _version(self, municipality_code: str, ring: dict, version: int) -> SnapshotKey:
        path = self.path(municipality_code)
        hexkey = ring["keys"].get(str(version))
        if hexkey is None:
            raise SnapshotKeyError(f"the key file {path} has no version {version} of the key of {municipality_code} "
                                   "(retired?): files written with it cannot be read")
        weakness = secret_weakness(hexkey)
        try:
            secret = bytes.fromhex(hexkey)
        except (ValueError, TypeError):
            secret = b""
        if weakness is not None or len(secret) != KEY_BYTES:
            why = weakness or f"not {KEY_BYTES} bytes as hexadecimal digits"
            raise SnapshotKeyError(f"the key file {path} holds a version {version} of the key of {municipality_code} "
                                   f"the platform refuses ({why})")
        key = SnapshotKey(municipality_code, version, secret)
        self._cache[(municipality_code, version)] = key
        return key

    def _create(self, municipality_code: str) -> None:
        """Two processes that write the municipality's first file at once agree: each links its candidate
        to the file name, which succeeds for one only (as infra.data_dir_keys)."""
        ring = {"municipality": municipality_code, "current": 1, "keys": {"1": secrets.token_hex(KEY_BYTES)}}
        write_private_file_once(self.path(municipality_code), json.dumps(ring).encode("ascii"))

    def _write(self, municipality_code: str, ring: dict) -> None:
        write_private_file(self.path(municipality_code), json.dumps(ring).encode("ascii"))

    @contextlib.contextmanager
    def _locked(self, municipality_code: str) -> Iterator[None]:
        """Rotations and retirements of one ring one at a time (readers need no lock: the file is replaced by
        a rename, never rewritten in place)."""
        lock = create_private_file(self.folder / f".{municipality_code}.lock")
        with lock.open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
