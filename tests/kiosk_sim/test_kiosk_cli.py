"""`bcl kiosk`: what the commands refuse before touching a card or the cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra.cluster_control import ClusterHandle
from kiosk_sim.kiosk import KioskError
from kiosk_sim.population import PopulationError
from kiosk_sim.vpcd import VpcdCardServer
from streams.cli import cli
from tests.kiosk_sim.conftest import AUTH_PIN, VPCD_READER


def run(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "--bootstrap-servers", "127.0.0.1:1", "kiosk", *args])


def test_issue_needs_the_card_choice_to_go_with_start_card(tmp_path: Path) -> None:
    common = ["issue", "--municipality", "302040", "--pin", "1234", "--out", str(tmp_path / "c.pdf")]
    alone = run(tmp_path, *common, "--resident", "12345678901")
    assert alone.exit_code == 2 and "--start-card" in alone.output
    missing = run(tmp_path, *common, "--start-card")
    assert missing.exit_code == 2 and "--resident or --serial" in missing.output
    bad_type = run(tmp_path, *common, "--type", "passport")
    assert bad_type.exit_code == 2 and "resident-record" in bad_type.output


def test_issue_names_a_bad_municipality_code(tmp_path: Path) -> None:
    result = run(tmp_path, "issue", "--municipality", "30204", "--pin", "1234", "--out", str(tmp_path / "c.pdf"))
    # A BclError: `bcl` (streams.cli.main) prints it as "error: ..." and exits 1.
    assert isinstance(result.exception, KioskError) and "6 digits" in str(result.exception)
    assert not (tmp_path / "c.pdf").exists()


def test_load_without_a_backup_says_what_to_do(tmp_path: Path) -> None:
    result = run(tmp_path, "load", "--municipality", "302040", "--rate", "1", "--duration", "1")
    assert isinstance(result.exception, PopulationError) and "materialiser" in str(result.exception)


@pytest.mark.integration
def test_issue_with_a_wrong_pin_says_so_in_one_line_and_sends_nothing(
        tmp_path: Path, cluster: ClusterHandle, vpcd_card: VpcdCardServer) -> None:
    # Through the installed `bcl`, with the card in the vpcd reader (pcscd): the PIN is checked on the card.
    bcl = Path(sys.executable).parent / "bcl"
    wrong_pin = "9999"
    assert wrong_pin != AUTH_PIN
    result = subprocess.run(
        [str(bcl), "--data-dir", str(tmp_path), "--bootstrap-servers", cluster.bootstrap_servers, "kiosk", "issue",
         "--municipality", "302066", "--pin", wrong_pin, "--reader", VPCD_READER],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: not issued (WRONG_PIN)") and "request" not in line  # nothing was sent
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "kiosk").exists()
