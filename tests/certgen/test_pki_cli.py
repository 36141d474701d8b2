"""`bcl pki` end to end: the real command line in subprocesses, `bcl pki ocsp-serve` queried by `openssl ocsp`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BCL = Path(sys.executable).parent / "bcl"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return os.environ | {"BCL_DATA_DIR": str(tmp_path / "var"),
                         "BCL_JPKI_REPOSITORY_URL": f"http://127.0.0.1:{free_port()}"}


def bcl(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "pki", *map(str, args)], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def responder(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`bcl pki ocsp-serve` in the foreground of a child process, on the port of the repository URL."""
    url = env["BCL_JPKI_REPOSITORY_URL"]
    log = tmp_path / "ocsp-serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([str(BCL), "pki", "ocsp-serve"], env=env, stdout=sink, stderr=sink)
    port = int(url.rsplit(":", 1)[1])
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it listens (readiness, not a timing assertion)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ocsp-serve did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_issue_revoke_crl_and_ocsp_through_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = bcl(env, "init")
    assert first.returncode == 0 and "created JPKI-TEST authentication root" in first.stdout, first.stderr
    assert "nothing to do" in bcl(env, "init").stdout

    assert bcl(env, "issue-card", "--serial", "0123456789abcdef", "--out", out).returncode == 0
    assert bcl(env, "issue-card", "--serial", "00000000000000ab", "--kind", "smartphone", "--out", out).returncode == 0
    assert oct((out / "0123456789abcdef.key.pem").stat().st_mode & 0o777) == "0o600"
    duplicate = bcl(env, "issue-card", "--serial", "0123456789abcdef", "--out", out)
    assert duplicate.returncode == 1 and "error: a certificate with serial 0123456789abcdef was already issued" in \
        duplicate.stderr
    bad = bcl(env, "revoke", "--serial", "0123456789abcdeg", "--reason", "death")
    assert bad.returncode == 2 and "16 hexadecimal digits" in bad.stderr

    revoked = bcl(env, "revoke", "--serial", "00000000000000ab", "--reason", "lost-card", "--municipality", "141003")
    assert revoked.returncode == 0 and "LOST_CARD (keyCompromise)" in revoked.stdout
    assert "00000000000000ab: revoked" in bcl(env, "status", "--serial", "00000000000000ab").stdout
    # A serial typed in upper case names the same certificate, shown in the one form.
    assert "00000000000000ab: revoked" in bcl(env, "status", "--serial", "00000000000000AB").stdout
    assert "unknown" in bcl(env, "status", "--serial", "00000000000000cd").stdout

    assert bcl(env, "crl", "--out", out / "auth.crl").returncode == 0
    crl = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(out / "auth.crl"), "-CAfile",
                          str(out / "auth-root.pem"), "-verify", "-noout", "-text"],
                         capture_output=True, text=True, timeout=30)
    assert "verify OK" in crl.stderr and "Serial Number: AB" in crl.stdout and "Key Compromise" in crl.stdout
    assert "0123456789ABCDEF" not in crl.stdout


def test_ocsp_serve_answers_openssl(env: dict[str, str], responder: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "nothing to do" in bcl(env, "init").stdout  # ocsp-serve set the PKI up
    assert bcl(env, "issue-card", "--serial", "0000000000000101", "--out", out).returncode == 0
    assert bcl(env, "renew", "--old-serial", "0000000000000101", "--new-serial", "0000000000000102",
               "--out", out).returncode == 0
    for serial, status in (("0000000000000101", "revoked"), ("0000000000000102", "good")):
        result = subprocess.run(["openssl", "ocsp", "-issuer", str(out / "auth-root.pem"), "-cert",
                                 str(out / f"{serial}.pem"), "-url", f"{responder}/ocsp",
                                 "-CAfile", str(out / "auth-root.pem"), "-resp_text"],
                                capture_output=True, text=True, timeout=30)
        assert "Response verify OK" in result.stderr, result.stderr
        assert f"{serial}.pem: {status}" in result.stdout
        if status == "revoked":
            assert "Reason: superseded" in result.stdout


def test_seal_cert_command_looks_up_the_municipality(env: dict[str, str], tmp_path: Path) -> None:
    assert bcl(env, "init").returncode == 0
    result = bcl(env, "seal-cert", "--municipality", "131121", "--out", tmp_path / "seal")
    assert result.returncode == 0, result.stderr
    assert "CN=世田谷区 電子契印" in result.stdout
    assert (tmp_path / "seal" / "seal-131121.pem").exists() and (tmp_path / "seal" / "seal-root.pem").exists()
    wrong = bcl(env, "seal-cert", "--municipality", "131122")
    assert wrong.returncode == 2 and "check digit" in wrong.stderr
