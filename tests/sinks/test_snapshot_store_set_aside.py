"""The snapshot store's side of `bcl backup resync` (issue 8, item 9), on real Parquet files: set aside a
municipality's rows from a sequence number, the writer lock, and an interrupted resync completed."""

from __future__ import annotations

import duckdb
import pytest

from sinks.encrypted_parquet import read_table
from sinks.snapshot_store import RESYNC, ParquetSnapshotStore, SnapshotStoreBusyError
from tests.factories import make_resident
from tests.streams.kiosk_world import load_residents


def sequences(store: ParquetSnapshotStore, code: str) -> list[int]:
    con = duckdb.connect()
    rel = store.history_relation(con)
    return [s for (s,) in con.execute(f"SELECT sequence FROM {rel} WHERE municipality_code = ? ORDER BY 1",
                                      [code]).fetchall()]


@pytest.fixture
def store(tmp_path) -> ParquetSnapshotStore:  # type: ignore[no-untyped-def]
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    load_residents(store, [make_resident("302066", n) for n in range(1, 11)] + [make_resident("045811", 1)])
    return store


def test_rows_from_a_sequence_are_set_aside_in_an_owner_only_file(store: ParquetSnapshotStore) -> None:
    with store.writer_lock(RESYNC):
        removed, aside = store.set_aside_history("302066", 8)
    assert removed.column("sequence").to_pylist() == [8, 9, 10]
    assert aside is not None and aside.stat().st_mode & 0o777 == 0o600
    assert aside.parent.stat().st_mode & 0o777 == 0o700
    assert sequences(store, "302066") == list(range(1, 8)) and sequences(store, "045811") == [1]
    assert read_table(aside, store.cipher, "302066").num_rows == 3  # encrypted as the history


def test_the_writer_lock_is_exclusive_and_names_its_holder(store: ParquetSnapshotStore) -> None:
    with (store.writer_lock("backup-materialiser"),
          pytest.raises(SnapshotStoreBusyError, match="backup-materialiser"),
          store.writer_lock(RESYNC)):
        pass
    with store.writer_lock(RESYNC):  # released
        pass


def test_an_interrupted_resync_blocks_the_materialiser_until_run_again(store: ParquetSnapshotStore) -> None:
    # Interrupted between the two renames: the old partition moved out, the new one not yet in place.
    with store.writer_lock(RESYNC):
        store.set_aside_history("302066", 8)
    part = store.history_dir / "municipality_code=302066"
    new = store.root / "resync" / "302066-new"
    part.rename(new)
    with pytest.raises(SnapshotStoreBusyError, match="interrupted"), store.writer_lock("backup-materialiser"):
        pass
    with store.writer_lock(RESYNC):
        removed, aside = store.set_aside_history("302066", 6)
    assert removed.column("sequence").to_pylist() == [6, 7] and aside is not None
    assert sequences(store, "302066") == list(range(1, 6))
    with store.writer_lock("backup-materialiser"):
        pass
