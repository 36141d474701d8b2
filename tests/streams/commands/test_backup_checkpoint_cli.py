"""`bcl backup checkpoint` through the real entry point (issue 12, item 2): a checkpoint per municipality, owner-only,
nothing new the second time, the restore from it, and one `error:` line for a municipality with no backup."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.encrypted_parquet import read_table
from sinks.restore import read_restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.cli import EXIT_ERROR
from tests.streams.commands.test_cli_errors import TANABE, assert_one_error, backup, bcl  # noqa: F401
from tests.streams.kiosk_world import ANCHOR


def test_checkpoint_then_restore_from_it(capsys: pytest.CaptureFixture[str], backup: Path,  # noqa: F811
                                         tmp_path: Path) -> None:
    status, out, err = bcl(capsys, backup, "backup", "checkpoint")
    assert status == 0 and out.startswith(f"{TANABE}: checkpoint as of ") and "1 new history parts" in out, err
    store = ParquetSnapshotStore(backup / "snapshots")
    [checkpoint] = store.checkpoints(TANABE)
    assert checkpoint.path.stat().st_mode & 0o777 == 0o600 and checkpoint.path.parent.stat().st_mode & 0o777 == 0o700
    status, out, _ = bcl(capsys, backup, "backup", "checkpoint", "--municipality", TANABE)
    assert status == 0 and out == f"{TANABE}: nothing new since its last checkpoint\n"
    status, _, err = bcl(capsys, backup, "backup", "restore", "--municipality", TANABE, "--as-of",
                         ANCHOR.isoformat(), "--out", str(tmp_path / "r.parquet"))
    assert status == 0, err
    assert sorted(read_restore(tmp_path / "r.parquet", store, TANABE).column("resident_code").to_pylist()) == sorted(
        r["resident_code"] for r in read_table(checkpoint.path, store.cipher, TANABE).to_pylist())


def test_checkpoint_of_a_municipality_without_backup(capsys: pytest.CaptureFixture[str],
                                                     backup: Path) -> None:  # noqa: F811
    assert_one_error(*bcl(capsys, backup, "backup", "checkpoint", "--municipality", "302040"), EXIT_ERROR,
                     "no backup of municipality 302040")
