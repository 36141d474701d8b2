"""The PC/SC daemon (pcscd) for the kiosk simulator: reuse the one that runs, or start one in the foreground.

On a fresh machine or in CI nothing starts pcscd (no systemd socket activation), so tests and the
`bcl card serve --start-pcscd` command start it themselves as a child process and stop it when done.
pcscd loads the vsmartcard vpcd reader driver from /etc/reader.conf.d/vpcd (Debian package
vsmartcard-vpcd), which then listens on 127.0.0.1:35963 for the virtual card.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from domain.errors import BclError

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_READER_CONFIG = Path("/etc/reader.conf.d/vpcd")


class PcscdError(BclError):
    """pcscd is missing, cannot start, or did not come up."""


def pcscd_running(socket_path: Path = PCSCD_SOCKET) -> bool:
    """True if a pcscd answers on its client socket (a stale socket file does not count)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


class PcscDaemon:
    """A pcscd this process started (or None of it, if one was already running)."""

    def __init__(self, process: subprocess.Popen[bytes] | None, log: IO[bytes] | None) -> None:
        self._process = process
        self._log = log

    @classmethod
    def ensure_running(cls, log_path: Path | None = None, timeout: float = 10.0) -> PcscDaemon:
        """Reuse a running pcscd, or start `pcscd --foreground` and wait until it accepts clients."""
        if pcscd_running():
            return cls(None, None)
        executable = shutil.which("pcscd") or next(
            (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if Path(p).exists()), None
        )
        if executable is None:
            raise PcscdError("pcscd is not installed; run `sudo bash infra/setup-machine.sh` (Debian package pcscd)")
        if not VPCD_READER_CONFIG.exists():
            raise PcscdError(
                f"{VPCD_READER_CONFIG} is missing: the vpcd reader driver is not installed "
                "(Debian package vsmartcard-vpcd; run `sudo bash infra/setup-machine.sh`)"
            )
        log = log_path.open("ab") if log_path is not None else None
        try:
            process = subprocess.Popen(
                [executable, "--foreground", "--error"],
                stdin=subprocess.DEVNULL,
                stdout=log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            if log is not None:
                log.close()
            raise PcscdError(f"cannot start {executable}: {exc}") from exc
        daemon = cls(process, log)
        deadline = time.monotonic() + timeout
        while not pcscd_running():
            code = process.poll()
            if code is not None:
                daemon.stop()
                raise PcscdError(
                    f"pcscd exited with status {code} at start-up (it needs root to create {PCSCD_SOCKET.parent}"
                    + (f"; see {log_path})" if log_path else ")")
                )
            if time.monotonic() >= deadline:
                daemon.stop()
                raise PcscdError(f"pcscd did not open {PCSCD_SOCKET} within {timeout:g} s")
            time.sleep(0.05)
        return daemon

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the pcscd started here (a pcscd found running is left alone)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
        self._process = None
        self._log = None
