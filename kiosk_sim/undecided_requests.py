"""The requests a kiosk process has sent and not settled yet, on disk: what a restarted kiosk must still withdraw.

A kiosk with two centres marks each request before sending it (kiosk_sim.withdrawal: the request id's claims
partition and its end offset) and settles it when the session ends: answered, or withdrawn and decided by the first
claim. A kiosk process that dies in between (power cut, crash) has sent a request that a worker may still issue, and
the resident, who saw no certificate, is owed a refund unless it was issued. The mark is therefore saved (SQLite,
synchronous=FULL: it survives a power loss) before the request is sent and deleted only once the session is settled;
the next run settles what is left (`KioskConnection.settle_undecided`): it withdraws each request and learns its
first claim, exactly as a kiosk that gave up does.
"""

from __future__ import annotations

from pathlib import Path

from infra.sqlite_database import immediate_transaction, open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS undecided (
    request_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    claims_partition INTEGER NOT NULL,
    claims_offset INTEGER NOT NULL
)
"""

Undecided = tuple[str, str, int, int]  # (request id, kiosk id, claims partition, end offset before it was sent)


class UndecidedRequests:
    """One kiosk process's file of marked, unsettled requests (shared by its terminals)."""

    def __init__(self, path: Path) -> None:
        self._con = open_database(path)
        self._con.execute(_SCHEMA)

    def add(self, request_id: str, kiosk_id: str, partition: int, offset: int) -> None:
        """Before the request is sent (committed to disk when this returns)."""
        with immediate_transaction(self._con):
            self._con.execute("INSERT OR REPLACE INTO undecided VALUES (?, ?, ?, ?)",
                              (request_id, kiosk_id, partition, offset))

    def settled(self, request_id: str) -> None:
        """The session has ended (answered, refused, refunded): nothing left to withdraw."""
        with immediate_transaction(self._con):
            self._con.execute("DELETE FROM undecided WHERE request_id = ?", (request_id,))

    def all(self) -> list[Undecided]:
        return [(r, k, int(p), int(o)) for r, k, p, o in
                self._con.execute("SELECT request_id, kiosk_id, claims_partition, claims_offset FROM undecided "
                                  "ORDER BY rowid")]

    def close(self) -> None:
        self._con.close()
