"""A DuckDB query over encrypted history parts written by several processes (each makes its own key-encryption key
per key version: the materialiser's members, each run, a checkpoint) must not call the key ring from DuckDB's
scan threads: that hung the query (sinks.encrypted_parquet, KEY_CACHE_LIFETIME). Writers and the reader are
child processes, so a hang fails the test instead of stopping the suite."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.sinks.test_register_checkpoints import CODE, week  # noqa: F401

_WRITE = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    from sinks.snapshot_store import ParquetSnapshotStore
    from tests.sinks.history_factory import append_events
    events = pickle.loads(Path(sys.argv[3]).read_bytes())
    append_events(ParquetSnapshotStore(Path(sys.argv[1])), sys.argv[2], events, part_rows=50)
""")
_READ = textwrap.dedent("""
    import sys, duckdb
    from pathlib import Path
    from sinks.snapshot_store import ParquetSnapshotStore
    store = ParquetSnapshotStore(Path(sys.argv[1]))
    con = duckdb.connect()
    print(con.execute(f"SELECT count(*), count(DISTINCT sequence) FROM {store.history_relation(con)}").fetchone())
""")


def test_parts_of_several_writing_processes_are_read_in_one_query(week, tmp_path: Path) -> None:  # noqa: F811
    _, full_load, changes = week
    root = tmp_path / "snapshots"
    events = full_load + changes
    writers = 6
    share = len(events) // writers + 1
    for n in range(writers):
        batch = tmp_path / f"events-{n}.pickle"
        batch.write_bytes(pickle.dumps(events[n * share:(n + 1) * share]))
        _python(_WRITE, str(root), CODE, str(batch))
    parts = list((root / "register_history").rglob("*.parquet"))
    assert len(parts) > writers and all(".k1." in p.name for p in parts)
    assert _python(_READ, str(root)) == f"({len(events)}, {len(events)})"


def _python(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
