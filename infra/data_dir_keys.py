"""The platform's own secret keys, one set per data dir: made at random on first use, kept in a file of
mode 0600 in a 0700 folder (infra.private_files), and read from it afterwards, so that every command on
the same data dir (the certificate worker that scrambles a sheet's back, the verifier that restores a
scan) uses the same key without anyone choosing or shipping one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from domain.errors import BclError
from domain.secret_strength import secret_weakness
from infra.private_files import FILE_MODE, private_folder, write_private_file_once

KEY_BYTES = 32


class DataDirKeyError(BclError):
    """A key file of the data dir cannot be read, or holds a key the platform refuses."""


def data_dir_secret(path: Path) -> str:
    """The secret in `path`, made (64 random hexadecimal digits) if the file does not exist yet.

    Two processes that start at once on a new data dir agree: each writes its own candidate to a
    temporary file and links it to `path`, which succeeds for one only; the other reads the winner's."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    write_private_file_once(path, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
    return _read(path)


def _read(path: Path) -> str:
    try:
        secret = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise DataDirKeyError(f"cannot read the key file {path}: {exc}") from exc
    weakness = secret_weakness(secret)
    if weakness is not None:
        raise DataDirKeyError(f"the key file {path} holds a key the platform refuses ({weakness}): put the "
                              "deployment's key in it, or remove it to have a new random one made (then "
                              "certificates printed with the old key no longer restore from a scan)")
    if path.stat().st_mode & 0o777 != FILE_MODE:  # made or copied by hand: no one else may read it from now on
        os.chmod(path, FILE_MODE)
    private_folder(path.parent)
    return secret
