"""The ingest commands through the real `bcl`, on a cluster of this module's own (they use the catalogue
topics, which other tests share): the adapter with a broker down (issue 8, item 11), the audited resync
(item 9), and query results printed as text, never as markup (item 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cluster_control import ClusterHandle
from streams.commands.exit_status import EXIT_CLUSTER_UNAVAILABLE

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"
CODE = "304271"  # 北山村


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = ClusterHandle.start(brokers=3, data_dir=tmp_path_factory.mktemp("ingest-cluster"))
    try:
        yield handle
    finally:
        handle.stop()


def bcl(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), *args], capture_output=True, text=True, env=env, timeout=timeout)


def environment(cluster: ClusterHandle, data_dir: Path) -> dict[str, str]:
    return os.environ | {"BCL_DATA_DIR": str(data_dir), "BCL_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}


def test_adapter_with_a_broker_down_fails_in_bounded_time_saying_why(own_cluster: ClusterHandle,
                                                                       tmp_path: Path) -> None:
    env = environment(own_cluster, tmp_path / "var")
    own_cluster.broker_down(2)
    try:
        began = time.monotonic()
        # Another municipality than the other tests': some of its events do reach the brokers that are up.
        result = bcl(env, "adapter", "full-load", "--municipality", "045811", "--population", "300",
                     "--delivery-timeout", "5")
        took = time.monotonic() - began
    finally:
        own_cluster.broker_up(2)
    assert result.returncode == EXIT_CLUSTER_UNAVAILABLE, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert own_cluster.bootstrap_servers in error and "did not acknowledge" in error and "5 s" in error
    assert "waiting for the cluster" in result.stdout  # it said what it was waiting for meanwhile
    assert took < 60
    assert not (tmp_path / "var" / "adapter" / "045811.json").exists()  # the position did not advance


def test_resync_is_audited_and_the_adapter_sends_again(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(own_cluster, tmp_path / "var")
    assert bcl(env, "adapter", "full-load", "--municipality", CODE, "--population", "60").returncode == 0
    materialise = ("backup", "materialise", "--until-caught-up", "--idle-seconds", "0.5")
    assert bcl(env, *materialise).returncode == 0

    complete = bcl(env, "backup", "resync", "--municipality", CODE, "--reason", "test")
    assert complete.returncode == 1 and complete.stderr.startswith("error:") and "--from-sequence" in complete.stderr
    done = bcl(env, "backup", "resync", "--municipality", CODE, "--from-sequence", "51", "--reason", "INC-42")
    assert done.returncode == 0, done.stderr
    assert "set aside 10 events" in done.stdout and "bcl adapter resend" in done.stdout
    [entry] = [json.loads(line) for line in (tmp_path / "var" / "audit" / "personal-data-access.jsonl")
               .read_text().splitlines()]
    assert (entry["action"], entry["municipality_code"], entry["records"], entry["reason"],
            entry["from_sequence"]) == ("backup.resync", CODE, 10, "INC-42", 51)

    assert bcl(env, "adapter", "resend", "--municipality", CODE, "--from-sequence", "51").returncode == 0
    assert bcl(env, *materialise).returncode == 0
    status = json.loads(bcl(env, "backup", "status", "--json").stdout)
    [mine] = [s for s in status if s["municipality_code"] == CODE]
    assert (mine["last_sequence"], mine["complete"]) == (60, True)

    # bcl query prints values (and column names) as text: brackets are not rich markup.
    assert bcl(env, "analysts", "grant", "sato", "--municipality", CODE).returncode == 0
    result = bcl(env, "query", "--analyst", "sato", """SELECT '[/x]' AS "[bold]c", '[red]r[/red]' AS v""")
    assert result.returncode == 0, result.stderr
    assert "[/x]" in result.stdout and "[red]r[/red]" in result.stdout and "[bold]c" in result.stdout
