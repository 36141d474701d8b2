"""Encryption at rest of the snapshot store (issue 12, item 3): after a real ingest through the embedded cluster,
no file the store writes (history parts, checkpoints, restores) holds a resident's name or individual number in
its bytes; without the key neither pyarrow nor DuckDB reads one; rotation and re-encryption keep every restore
equal to the ground truth; a missing or wrong key is one clear line."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from infra.cluster_control import ClusterHandle
from infra.snapshot_keys import KeyFileKeyring, SnapshotKeyError
from schemas.registry import FileSchemaRegistry
from sinks.encrypted_parquet import key_version, read_table
from sinks.register_checkpoints import write_checkpoint
from sinks.restore import read_restore, restore
from sinks.snapshot_store import ParquetSnapshotStore, history_schema
from streams.adapter import publish
from streams.cli import EXIT_ERROR
from streams.register.simulator import RegisterSimulator
from tests.platforms import make_platform
from tests.sinks.history_factory import append_events, history_table
from tests.sinks.test_register_checkpoints import CODE, check, week  # noqa: F401
from tests.streams.commands.test_cli_errors import TANABE, assert_one_error, backup, bcl  # noqa: F401
from tests.streams.kiosk_world import ANCHOR
from tests.streams.test_backup_end_to_end import START, private_topics, reference, simulator  # noqa: F401

PERSONAL = ("family_name", "given_name", "family_name_kana", "given_name_kana", "household_head_name",
            "individual_number")


def personal_values(sim: RegisterSimulator, instant: dt.datetime) -> set[bytes]:
    """Every resident's names (kanji and kana) and individual number, as UTF-8: what a file must not show. At
    least 6 bytes (two kanji): a one-kanji given name's 3 bytes turn up in any 30 kB of ciphertext by chance."""
    values = set()
    for record in sim.register_at(instant).values():
        values |= {str(record[field]).encode() for field in PERSONAL if record.get(field)}
    return {v for v in values if len(v) >= 6}


def leaks(path: Path, values: set[bytes]) -> list[bytes]:
    data = path.read_bytes()
    return [v for v in values if v in data]


@pytest.mark.integration
def test_no_file_of_the_store_holds_a_name_or_number_after_an_ingest(
    cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path  # noqa: F811
) -> None:
    names = private_topics(topic_factory)
    sim = simulator(reference, "302040", 400)
    events = list(sim.full_load()) + list(sim.changes(3))
    platform = make_platform(tmp_path, cluster)
    publish(events, cluster.bootstrap_servers, FileSchemaRegistry(), platform.register_signer, topic=names.diffs)
    counters = platform.materialiser(group_id=group_id, topic_names=names).run(until_caught_up=True, idle_seconds=0.5)
    assert counters.applied == len(events)
    store = platform.snapshot_store
    assert write_checkpoint(store, "302040").checkpoint is not None
    last = events[-1]["event_time"]
    out = tmp_path / "restore.parquet"
    assert restore(store, "302040", last, out) == len(sim.register_at(last))
    values = personal_values(sim, START) | personal_values(sim, last)
    assert len(values) > 400
    files = [*store.root.rglob("*.parquet"), out]
    assert {p.parent.parent.name for p in files} >= {"register_history", "register_checkpoints"}
    # The check can fail: the same rows written plain show the names.
    plain = tmp_path / "plain.parquet"
    pq.write_table(read_restore(out, store, "302040"), plain)
    assert leaks(plain, values)
    for path in files:
        assert key_version(path) is not None or path == out, path
        assert not leaks(path, values), path
        # Without the key: pyarrow refuses the footer, DuckDB the file.
        with pytest.raises(OSError, match="encrypted"):
            pq.read_table(path)
        with pytest.raises(duckdb.Error, match="encrypted"):
            duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    # Nor with another key ring of the same municipality (a key file restored from elsewhere).
    other = ParquetSnapshotStore(store.root, KeyFileKeyring(tmp_path / "other-keys"))
    other.keys.current_key("302040")
    with pytest.raises(SnapshotKeyError, match="files of 302040 do not open with version 1 of its key in the key"):
        restore(other, "302040", last, tmp_path / "other.parquet")


def test_rotation_and_reencryption_keep_restores_equal_to_the_truth(week, tmp_path: Path) -> None:  # noqa: F811
    """Files before and after a rotation both read; plain files from before encryption read too; after
    `reencrypt` every file has the new version, the old one is retired, and restores across checkpoint
    boundaries still equal the ground truth."""
    sim, load, changes = week
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    legacy = store.history_dir / f"municipality_code={CODE}"
    legacy.mkdir(parents=True)
    pq.write_table(history_table(load[:200]).drop_columns(["municipality_code"]).cast(  # as before encryption
        history_schema().remove(history_schema().get_field_index("municipality_code"))), legacy / "part-old.parquet")
    append_events(store, CODE, load[200:], 400)
    third = len(changes) // 3
    append_events(store, CODE, changes[:third], 50)
    first = write_checkpoint(store, CODE).checkpoint
    assert first is not None and key_version(first.path) == 1
    assert store.keys.rotate(CODE).version == 2
    append_events(store, CODE, changes[third:2 * third], 50)
    second = write_checkpoint(store, CODE).checkpoint
    append_events(store, CODE, changes[2 * third:], 50)
    assert second is not None and key_version(second.path) == 2
    assert set(store.key_versions_in_use(CODE)) == {None, 1, 2}
    instants = [load[-1]["event_time"], first.instant, first.instant + dt.timedelta(hours=5), second.instant,
                changes[-1]["event_time"]]
    for instant in instants:
        check(store, sim, instant, tmp_path)
    with pytest.raises(SnapshotKeyError, match="reencrypt"):
        store.retire_key(CODE, 1)

    with store.writer_lock("test"):
        rewritten = store.reencrypt(CODE)
    assert rewritten >= 3 and set(store.key_versions_in_use(CODE)) == {2}
    store.retire_key(CODE, 1)
    assert store.keys.versions(CODE) == [2]
    fresh = ParquetSnapshotStore(store.root, KeyFileKeyring(store.keys.folder))  # nothing cached of version 1
    assert len(fresh.checkpoints(CODE)) == 2  # still usable: they name the re-encrypted parts
    for instant in instants:
        check(fresh, sim, instant, tmp_path)
    with fresh.writer_lock("test"):
        assert fresh.reencrypt(CODE) == 0  # nothing left to do


def test_a_missing_or_wrong_key_is_one_line_naming_the_municipality_and_key_file(
    capsys: pytest.CaptureFixture[str], backup: Path, tmp_path: Path  # noqa: F811
) -> None:
    restore_args = ("backup", "restore", "--municipality", TANABE, "--as-of", ANCHOR.isoformat(),
                    "--out", str(tmp_path / "r.parquet"))
    key_file = backup / "keys" / "snapshot-store" / f"{TANABE}.json"
    status, out, err = bcl(capsys, backup, "backup", "keys", "rotate", "--municipality", TANABE)
    assert status == 0 and "key version 2 is current" in out, err
    status, out, err = bcl(capsys, backup, *restore_args)
    assert status == 0, err
    status, out, _ = bcl(capsys, backup, "backup", "keys", "list", "--municipality", TANABE)
    assert out.startswith(f"{TANABE}: key versions 1, 2 (current: 2); files: version 1: 1 files"), out
    saved = key_file.read_bytes()

    ring = json.loads(saved)
    ring["keys"]["1"] = "0123456789abcdef" * 4  # another key under the same version
    key_file.write_text(json.dumps(ring))
    assert_one_error(*bcl(capsys, backup, *restore_args), EXIT_ERROR, f"files of {TANABE} do not open with version 1",
                     str(key_file))
    key_file.unlink()
    assert_one_error(*bcl(capsys, backup, *restore_args), EXIT_ERROR, f"municipality {TANABE}", str(key_file))
    key_file.write_bytes(saved)

    assert_one_error(*bcl(capsys, backup, "backup", "keys", "retire", "--municipality", TANABE, "--version", "1"),
                     EXIT_ERROR, "still encrypts 1 files", "reencrypt")
    status, out, err = bcl(capsys, backup, "backup", "reencrypt", "--municipality", TANABE)
    assert status == 0 and out.startswith(f"{TANABE}: 1 files re-encrypted with key version 2"), err
    status, out, err = bcl(capsys, backup, "backup", "keys", "retire", "--municipality", TANABE, "--version", "1")
    assert status == 0, err
    shutil.rmtree(tmp_path / "r.parquet", ignore_errors=True)
    status, out, err = bcl(capsys, backup, *restore_args)
    assert status == 0 and "restored 3 records" in out, err
    assert read_table(next((backup / "snapshots" / "register_history").rglob("*.parquet")),
                      ParquetSnapshotStore(backup / "snapshots").cipher, TANABE).num_rows == 3
