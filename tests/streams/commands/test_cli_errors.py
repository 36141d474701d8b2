"""The newcomer's mistakes, each through the real `bcl` entry point (streams.cli.main, or the installed
`bcl` in a subprocess where librdkafka's own output or the time taken matter): a documented non-zero
exit status, exactly one `error:` line on stderr, no traceback, and nothing written where it should not be."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cluster_control import ClusterHandle
from sinks.snapshot_store import ParquetSnapshotStore
from streams.cli import EXIT_CLUSTER_UNAVAILABLE, EXIT_ERROR, EXIT_USAGE, main
from streams.simulated_clock import published_worker_clock
from tests.factories import individual_number, make_resident
from tests.streams.kiosk_world import ANCHOR, load_residents

BCL = Path(sys.executable).parent / "bcl"
TANABE = "302066"
UNKNOWN = "999999"  # six digits, but no municipality has it


def bcl(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run `bcl --data-dir DATA_DIR ARGS` in this process through main(): (status, stdout, stderr)."""
    try:
        main(["--data-dir", str(data_dir), *args])
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def bcl_process(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "BCL_LOG_LEVEL": "warning"})


def assert_one_error(status: int, out: str, err: str, expected_status: int, *fragments: str) -> str:
    assert status == expected_status, (status, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()} if path.exists() else set()


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    """A data dir whose backup holds three residents of 田辺市 (one with a card), loaded 30 days before ANCHOR."""
    data_dir = tmp_path / "data"
    card = {"serial": f"{0x1000:016x}", "kind": "CARD", "not_before": dt.date(2026, 1, 1),
            "not_after": dt.date(2031, 1, 1)}
    residents = [make_resident(TANABE, 1, jpki_certificates=[card]), make_resident(TANABE, 2),
                 make_resident(TANABE, 3)]
    load_residents(ParquetSnapshotStore(data_dir / "snapshots"), residents)
    return data_dir


@pytest.fixture
def in_empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty working directory, to see that nothing is written into it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the backup ------------------------------------------------------------------------------------------


def test_restore_before_any_data_says_from_when_the_backup_holds_data(
        capsys: pytest.CaptureFixture[str], backup: Path, in_empty_cwd: Path) -> None:
    before = files_under(backup)
    line = assert_one_error(*bcl(capsys, backup, "backup", "restore", "--municipality", TANABE,
                                 "--as-of", "2020-01-01"), EXIT_ERROR, "holds nothing of 302066", "holds data from")
    assert "2026-10-21T10:00:00+09:00" in line  # the full load, 30 days before the anchor, Japan time
    assert files_under(backup) == before and files_under(in_empty_cwd) == set()


def test_restore_refuses_an_output_directory_that_does_not_exist(
        capsys: pytest.CaptureFixture[str], backup: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    assert_one_error(*bcl(capsys, backup, "backup", "restore", "--municipality", TANABE, "--as-of",
                          "2026-11-20T12:00", "--out", str(missing / "x.parquet")), EXIT_USAGE, "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_restore_writes_under_the_data_dir_by_default_and_prints_the_path(
        capsys: pytest.CaptureFixture[str], backup: Path, in_empty_cwd: Path) -> None:
    status, out, err = bcl(capsys, backup, "backup", "restore", "--municipality", TANABE,
                           "--as-of", "2026-11-20T12:00")
    assert status == 0, err
    [written] = files_under(backup / "restores")
    assert written.name == "302066-20261120T120000.parquet" and str(written) in out
    assert files_under(in_empty_cwd) == set()
    assert '"action": "backup.restore"' in (backup / "audit" / "personal-data-access.jsonl").read_text()


def test_restore_of_an_unknown_municipality(capsys: pytest.CaptureFixture[str], backup: Path) -> None:
    assert_one_error(*bcl(capsys, backup, "backup", "restore", "--municipality", UNKNOWN, "--as-of", "2026-11-20"),
                     EXIT_ERROR, "'999999' is not a known municipality")
    assert not (backup / "restores").exists()


def test_restore_with_a_data_dir_that_holds_no_backup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, tmp_path / "typo", "backup", "restore", "--municipality", TANABE,
                          "--as-of", "2026-11-20"), EXIT_ERROR, "no history yet")
    assert not (tmp_path / "typo").exists()


def test_restore_with_a_malformed_instant(capsys: pytest.CaptureFixture[str], backup: Path) -> None:
    assert_one_error(*bcl(capsys, backup, "backup", "restore", "--municipality", TANABE, "--as-of", "yesterday"),
                     EXIT_USAGE, "is not an ISO 8601 time", "bcl backup restore --help")


# --- statistics, configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["monthly", "fiscal-year"])
def test_stats_of_an_unknown_municipality(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    assert_one_error(*bcl(capsys, tmp_path, "stats", command, "--municipality", UNKNOWN), EXIT_ERROR,
                     "'999999' is not a known municipality")


def test_a_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = bcl(capsys, tmp_path, "--config", str(tmp_path / "missing.toml"), "backup", "status")
    assert_one_error(status, out, err, EXIT_ERROR, "cannot read the config file")


def test_an_unknown_option_is_one_line_with_where_to_look(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, tmp_path, "backup", "restore", "--municipalty", TANABE), EXIT_USAGE,
                     "--municipalty", "see `bcl backup restore --help`")


def test_an_unwritable_output_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str], backup: Path,
                                                          tmp_path: Path) -> None:
    # The directory exists but is a file's name: the OS refuses, the CLI says so in one line.
    (tmp_path / "a-file").write_text("")
    assert bcl(capsys, backup, "analysts", "grant", "sato", "--municipality", TANABE)[0] == 0
    assert_one_error(*bcl(capsys, backup, "query", "--analyst", "sato", "SELECT 1 AS one",
                          "--csv", str(tmp_path / "a-file" / "x.csv")), EXIT_ERROR, "a-file")


# --- the PKI and cards ------------------------------------------------------------------------------------------


def test_crl_writes_under_the_pki_dir_by_default(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 in_empty_cwd: Path) -> None:
    assert bcl(capsys, tmp_path, "pki", "init")[0] == 0
    status, out, err = bcl(capsys, tmp_path, "pki", "crl")
    assert status == 0, err
    assert (tmp_path / "pki" / "crl" / "auth-1.crl").is_file() and str(tmp_path / "pki" / "crl" / "auth-1.crl") in out
    assert files_under(in_empty_cwd) == set()


def test_crl_refuses_an_output_directory_that_does_not_exist(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    assert bcl(capsys, tmp_path, "pki", "init")[0] == 0
    assert_one_error(*bcl(capsys, tmp_path, "pki", "crl", "--out", str(tmp_path / "no" / "auth.crl")),
                     EXIT_USAGE, "does not exist")
    assert not (tmp_path / "no").exists()


def test_crl_without_a_pki(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, tmp_path, "pki", "crl"), EXIT_ERROR, "bcl pki init")
    assert not (tmp_path / "pki" / "crl").exists()


def test_card_serve_accepts_what_pki_issue_card_writes_and_names_a_bad_ca_file(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    issue = ("pki", "issue-card", "--serial", "00000000000000a1", "--out", str(cards))
    assert_one_error(*bcl(capsys, tmp_path, *issue), EXIT_ERROR, "run `bcl pki init`")  # no PKI yet
    assert not cards.exists()
    assert bcl(capsys, tmp_path, "pki", "init")[0] == 0
    assert bcl(capsys, tmp_path, *issue)[0] == 0
    not_a_certificate = tmp_path / "ca.der"
    not_a_certificate.write_bytes(b"\x30\x03\x02\x01\x00")
    assert_one_error(*bcl(capsys, tmp_path, "card", "serve", "--key", str(cards / "00000000000000a1.key.pem"),
                          "--cert", str(cards / "00000000000000a1.pem"), "--ca-cert", str(not_a_certificate),
                          "--pin", "1234", "--once"), EXIT_ERROR, "ca.der is not an X.509 certificate (PEM or DER)")


def test_card_serve_with_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, tmp_path, "card", "serve", "--key", str(tmp_path / "K.pem"), "--cert",
                          str(tmp_path / "C.der"), "--pin", "1234"), EXIT_USAGE, "does not exist")


# --- kiosks ---------------------------------------------------------------------------------------------------


def test_kiosk_residents_lists_codes_without_names_and_audits_the_read(
        capsys: pytest.CaptureFixture[str], backup: Path) -> None:
    status, out, err = bcl(capsys, backup, "kiosk", "residents", "--municipality", TANABE)
    assert status == 0, err
    assert "00000000001" in out and f"{0x1000:016x}" in out  # the one resident with a card, and the card
    assert "00000000002" not in out  # no card: no virtual card can be made for them
    # (田辺 is also the city's name, in the title.) No name, reading, address, birth date or individual number:
    for personal in ("一郎", "タナベ", "イチロウ", "今福", "1980", individual_number(1)):
        assert personal not in out
    assert "--start-card --resident 00000000001" in out
    audit = (backup / "audit" / "personal-data-access.jsonl").read_text()
    assert '"action": "kiosk-residents"' in audit and '"records": 1' in audit


def test_kiosk_residents_of_an_unknown_municipality_or_without_a_backup(
        capsys: pytest.CaptureFixture[str], backup: Path, tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, backup, "kiosk", "residents", "--municipality", UNKNOWN), EXIT_ERROR,
                     "not a known municipality")
    assert_one_error(*bcl(capsys, backup, "kiosk", "residents", "--municipality", "131016"), EXIT_ERROR,
                     "no current resident of 131016")
    assert_one_error(*bcl(capsys, tmp_path / "empty", "kiosk", "residents", "--municipality", TANABE), EXIT_ERROR,
                     "holds no backup yet")


def test_kiosk_issue_usage_mistakes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    common = ["kiosk", "issue", "--municipality", TANABE, "--pin", "1234"]
    assert_one_error(*bcl(capsys, tmp_path, *common, "--start-card"), EXIT_USAGE, "bcl kiosk residents")
    assert_one_error(*bcl(capsys, tmp_path, *common, "--at", "noon"), EXIT_USAGE, "'--at'")
    assert_one_error(*bcl(capsys, tmp_path, *common, "--out", str(tmp_path / "no" / "c.pdf")), EXIT_USAGE,
                     "does not exist")
    assert_one_error(*bcl(capsys, tmp_path, "kiosk", "issue", "--municipality", UNKNOWN, "--pin", "1234"),
                     EXIT_ERROR, "not a known municipality")
    assert_one_error(*bcl(capsys, tmp_path, "kiosk", "load", "--municipality", UNKNOWN), EXIT_ERROR,
                     "not a known municipality")
    assert not (tmp_path / "no").exists() and not (tmp_path / "kiosk").exists()


class FakeDaemon:
    """Stands for a pcscd that the command started (so that it must stop it)."""

    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.integration
def test_kiosk_issue_start_card_stops_the_pcscd_it_started_when_the_card_cannot_be_made(
        capsys: pytest.CaptureFixture[str], cluster: ClusterHandle, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.pcscd import PcscDaemon

    daemon = FakeDaemon()
    monkeypatch.setattr(PcscDaemon, "ensure_running", classmethod(lambda cls, **_: daemon))
    status, out, err = bcl(capsys, tmp_path, "--bootstrap-servers", cluster.bootstrap_servers, "kiosk", "issue",
                           "--municipality", TANABE, "--pin", "1234", "--start-card", "--resident", "00000000001")
    assert_one_error(status, out, err, EXIT_ERROR, "holds no backup yet")
    assert daemon.stopped


@pytest.mark.integration
def test_a_kiosk_clock_the_running_worker_would_refuse_is_stopped_before_the_card(
        capsys: pytest.CaptureFixture[str], cluster: ClusterHandle, tmp_path: Path) -> None:
    # This process stands for a worker on the real clock: it is alive, so its published clock counts.
    with published_worker_clock(tmp_path / "worker" / "clocks", dt.timedelta(0), dt.timedelta(minutes=5)):
        status, out, err = bcl(capsys, tmp_path, "--bootstrap-servers", cluster.bootstrap_servers, "kiosk", "issue",
                               "--municipality", TANABE, "--pin", "1234", "--reader", "no such reader",
                               "--at", (ANCHOR - dt.timedelta(days=400)).isoformat())
    assert_one_error(status, out, err, EXIT_ERROR, "freshness window", "runs on the real clock",
                     "start the worker with the same --at")
    assert not (tmp_path / "kiosk").exists()


# --- the cluster --------------------------------------------------------------------------------------------------


def test_no_cluster_configured(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error(*bcl(capsys, tmp_path, "backup", "materialise", "--until-caught-up"), EXIT_CLUSTER_UNAVAILABLE,
                     "no Kafka cluster configured", "bcl cluster up")


@pytest.mark.parametrize("command", [
    ("adapter", "full-load", "--municipality", "304271"),  # before the register is built
    ("backup", "materialise", "--until-caught-up"),
    ("kiosk", "issue", "--municipality", TANABE, "--pin", "1234"),
    ("pki", "sync", "--until-caught-up"),
    ("billing", "run", "--until-caught-up"),
])
def test_a_stale_bootstrap_file_fails_at_once_in_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    bootstrap = tmp_path / "cluster" / "bootstrap.servers"
    bootstrap.parent.mkdir(parents=True)
    bootstrap.write_text(f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}\n")  # nothing listens there
    began = time.monotonic()
    result = bcl_process(tmp_path, *command, timeout=30)
    assert time.monotonic() - began < 15
    assert_one_error(result.returncode, result.stdout, result.stderr, EXIT_CLUSTER_UNAVAILABLE,
                     "is no longer running", "bcl cluster up")
    assert "Connection refused" not in result.stderr and not (tmp_path / "adapter").exists()


def test_configured_servers_that_do_not_answer(tmp_path: Path) -> None:
    began = time.monotonic()
    result = bcl_process(tmp_path, "--bootstrap-servers", f"127.0.0.1:{free_port()}", "backup", "materialise")
    assert time.monotonic() - began < 15
    assert_one_error(result.returncode, result.stdout, result.stderr, EXIT_CLUSTER_UNAVAILABLE,
                     "no Kafka broker answers", "check the address")


@pytest.fixture
def killed_cluster(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose `bcl cluster up` was SIGKILLed: it could not remove its bootstrap file."""
    process = subprocess.Popen([str(BCL), "--data-dir", str(tmp_path), "cluster", "up", "--brokers", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bootstrap = tmp_path / "cluster" / "bootstrap.servers"
        deadline = time.monotonic() + 60
        while not bootstrap.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        yield tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_killed_cluster_leaves_a_file_that_is_recognised(killed_cluster: Path) -> None:
    assert (killed_cluster / "cluster" / "bootstrap.servers").exists()
    result = bcl_process(killed_cluster, "adapter", "diffs", "--municipality", TANABE, "--days", "1", timeout=30)
    # Not loaded yet is said first; once it is, the stale cluster is.
    assert_one_error(result.returncode, result.stdout, result.stderr, EXIT_ERROR, "has not been loaded yet")
    began = time.monotonic()
    result = bcl_process(killed_cluster, "backup", "materialise", timeout=30)
    assert time.monotonic() - began < 15
    assert_one_error(result.returncode, result.stdout, result.stderr, EXIT_CLUSTER_UNAVAILABLE, "no longer running")
