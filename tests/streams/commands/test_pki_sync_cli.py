"""`bcl pki sync` and `bcl pki crl --at`: the real command line in subprocesses against the embedded cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from domain.japan_time import parse_instant
from infra.cluster_control import ClusterHandle

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"


def bcl(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "pki", *map(str, args)], capture_output=True, text=True, env=env, timeout=60)


def test_sync_needs_the_pki_then_runs_until_caught_up(cluster: ClusterHandle, tmp_path: Path) -> None:
    env = os.environ | {"BCL_DATA_DIR": str(tmp_path / "var"), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}
    missing = bcl(env, "sync", "--until-caught-up", "--key-pool-size", "2")
    assert missing.returncode == 1 and "bcl pki init" in missing.stderr + missing.stdout
    assert bcl(env, "init").returncode == 0
    done = bcl(env, "sync", "--until-caught-up", "--idle-seconds", "0.2", "--key-pool-size", "2")
    assert done.returncode == 0, done.stderr
    counters = json.loads(done.stdout.strip().splitlines()[-1])
    # An empty backup accepted nothing, so nothing is issued or revoked whatever the shared topic holds.
    assert (counters["issued"], counters["revoked"], counters["changes"]) == (0, 0, 0)
    assert (tmp_path / "var" / "pki" / "key-pool" / "rsa2048-x2.pem").exists()


def test_crl_as_of_an_instant_lists_the_revocations_up_to_it(tmp_path: Path) -> None:
    env = os.environ | {"BCL_DATA_DIR": str(tmp_path / "var")}
    assert bcl(env, "init").returncode == 0
    serial = "0123456789abcdef"
    assert bcl(env, "issue-card", "--serial", serial, "--out", tmp_path / "card").returncode == 0
    revoked = bcl(env, "revoke", "--serial", serial, "--reason", "death", "--at", "2026-05-10T10:00:00+09:00")
    assert revoked.returncode == 0, revoked.stderr
    # Without a zone, --at is Japan time, as every time option: 09:59:59 is a second before the revocation.
    for at, count in (("2026-05-10T09:59:59", 0), ("2026-05-10T01:00:00+00:00", 1)):
        out = tmp_path / f"{count}.crl"
        result = bcl(env, "crl", "--out", out, "--at", at)
        assert result.returncode == 0, result.stderr
        crl = x509.load_der_x509_crl(out.read_bytes())
        assert crl.last_update_utc == parse_instant(at) and len(crl) == count
