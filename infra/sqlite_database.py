"""The platform's own SQLite databases (the worker's request ledger, the disaster store, the serial index): opened
one way, private, in WAL mode so that readers never wait for the writer, and changed in transactions that take
the write lock at their start (BEGIN IMMEDIATE), so that two processes never both read and then both write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.private_files import create_private_file


def open_database(path: Path, *, synchronous: str = "FULL", busy_timeout_s: float = 5.0,
                  page_size: int | None = None) -> sqlite3.Connection:
    """`path` as a connection in autocommit mode (transactions are explicit: `immediate_transaction`), 0600 in a
    0700 folder (SQLite gives its -wal and -shm files the database's mode). synchronous=FULL: a committed
    transaction survives a power loss; NORMAL: a process crash (enough for what can be rebuilt). `page_size`
    applies to a database created now only (SQLite fixes it in a WAL database's first write)."""
    create_private_file(path)
    con = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    if page_size is not None:
        con.execute(f"PRAGMA page_size={int(page_size)}")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    return con


@contextmanager
def immediate_transaction(con: sqlite3.Connection) -> Iterator[None]:
    """One transaction holding the write lock from its start: committed, or rolled back on any exception."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
