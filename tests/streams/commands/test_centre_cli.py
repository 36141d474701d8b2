"""`bcl centre status|fail|restore` against `bcl cluster up --brokers 4 --centres` (real processes): a drill loses
East (its worker's process killed, its brokers down) and restores it; mistakes get one `error:` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streams.commands.cli_refusals import refused

pytestmark = pytest.mark.integration
BCL = [sys.executable, "-m", "streams.cli"]


def _bcl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    return subprocess.run([*BCL, "--data-dir", str(data_dir), *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.fixture
def two_centres(tmp_path: Path) -> Iterator[Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    cluster = subprocess.Popen([*BCL, "--data-dir", str(tmp_path), "cluster", "up", "--brokers", "4", "--centres"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert cluster.stdout is not None and cluster.stdout.readline().strip()  # the bootstrap servers: ready
    yield tmp_path
    cluster.terminate()
    cluster.wait(30)


def test_a_drill_loses_east_and_restores_it(two_centres: Path) -> None:
    data_dir = two_centres
    # A stand-in for East's worker: a process that names itself in the pid file, as `bcl worker run --centre` does.
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    pid_file = data_dir / "centres" / "east" / "worker.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{stand_in.pid}\n")

    status = json.loads(_bcl(data_dir, "centre", "status", "--json").stdout)
    assert status["EAST"]["brokers"] == [1, 2] and status["WEST"]["brokers"] == [3, 4]
    assert "seven-eleven" in status["EAST"]["vendors"] and "lawson" in status["WEST"]["vendors"]
    assert status["EAST"]["worker_pid"] == stand_in.pid and status["WEST"]["worker_pid"] is None
    assert not status["EAST"]["brokers_failed"] and status["EAST"]["lag"] == 0

    failed = _bcl(data_dir, "centre", "fail", "east")
    assert failed.returncode == 0, failed.stderr
    assert f"pid {stand_in.pid} killed" in failed.stdout and "leaders moved" in failed.stdout
    assert stand_in.wait(10) == -9  # SIGKILL
    status = json.loads(_bcl(data_dir, "centre", "status", "--json").stdout)
    assert status["EAST"]["brokers_failed"] and status["EAST"]["partitions_led"] == 0
    assert status["EAST"]["worker_pid"] is None and status["EAST"]["lag"] is None
    refused(_bcl(data_dir, "centre", "fail", "WEST"), 1, "the other centre is failed already")

    restored = _bcl(data_dir, "centre", "restore", "EAST")
    assert restored.returncode == 0 and "bcl worker run --centre EAST" in restored.stdout
    status = json.loads(_bcl(data_dir, "centre", "status", "--json").stdout)
    assert not status["EAST"]["brokers_failed"] and status["EAST"]["partitions_led"] > 0
    text = _bcl(data_dir, "centre", "status").stdout
    assert text.startswith("EAST: up, brokers [1, 2]") and "no worker running" in text


def test_mistakes_get_one_line(tmp_path: Path) -> None:
    refused(_bcl(tmp_path, "centre", "fail", "NORTH"), 2, "unknown centre 'NORTH'")
    refused(_bcl(tmp_path, "centre", "status"), 1, "no two-centre cluster", "--centres")
