"""Files that hold personal data or keys: mode 0600 in folders of mode 0700, whatever the umask.

Every writer of such a file (snapshots, restores, the worker's ledger, printed certificates, the issuance
archive, the audit log, key files) creates it through this module, so that no file is briefly readable by
other local users and no folder lets them list or open what it holds. The modes are set explicitly
(`chmod` after creation), because the mode given to `open`/`mkdir` is only an upper bound the umask cuts:
a umask of 022 leaves 0600/0700 alone, but one of 0277 would make a folder the owner cannot write.
Encryption at rest is not done here (docs/domain.md §8)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """Make `path`, a folder of the platform's own, mode 0700: created with any missing parents (all 0700),
    or tightened if it exists with a wider mode, so that a folder made by an earlier version or by hand
    becomes private the next time it is written to. Parents that exist already are left as they are."""
    if not _make_folders(path) and stat.S_IMODE(path.stat().st_mode) != FOLDER_MODE:
        os.chmod(path, FOLDER_MODE)
    return path


def _make_folders(path: Path) -> bool:
    """Create `path` and its missing parents with mode 0700; False if `path` existed already."""
    missing: list[Path] = []
    folder = path
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():  # a file of that name: never chmod what is not ours to change
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
            continue  # another process made it meanwhile, and set its mode
        os.chmod(folder, FOLDER_MODE)
    return bool(missing)


def write_private_file(path: Path, data: bytes) -> None:
    """Write `path` atomically (temporary file in the same folder, then rename) with mode 0600: a crash
    never leaves half a file, and no reader ever sees one. Missing folders are made 0700; an existing one
    is left as it is (it may be the user's --out folder: a platform folder is made private with
    private_folder by its owner)."""
    _make_folders(path.parent)
    tmp = _private_candidate(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private_file_once(path: Path, data: bytes) -> None:
    """Create `path` with `data` (mode 0600, whole, in a private folder) unless it exists. Two processes that
    create it at once agree: each writes its candidate to a temporary file and links it to `path`, which
    succeeds for one only; the other's candidate is dropped and the winner's stands."""
    private_folder(path.parent)
    tmp = _private_candidate(path, data)
    try:
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _private_candidate(path: Path, data: bytes) -> Path:
    """`data` in a temporary file of mode 0600 beside `path`, on disk (fsync), for a rename or link to `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def append_private_line(path: Path, line: str) -> None:
    """Append one line (UTF-8) to `path`, creating it with mode 0600 in a private folder."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def create_private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if it does not exist (and tighten it if it does), in a private
    folder. For a database a library opens by name: SQLite gives its -wal and -shm files the mode of
    the database file, so they are private too."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def private_output(path: Path) -> Iterator[Path]:
    """A temporary name for a writer that creates its file by name with a mode of its own (pyarrow,
    DuckDB's COPY): it lies in a fresh 0700 folder beside `path`, so nobody else can open the file while
    it is written; on success the file is made 0600 and renamed onto `path`. The folder of `path` must
    exist (it is not made here: it may be the user's --out folder)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))  # mkdtemp creates it 0700
    try:
        tmp = staging / path.name
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
