"""The request ledger (streams.request_ledger) on a real SQLite file: identity, not position; migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streams.request_ledger import Claim, IssuedMessage, RequestLedger, Seen

FIRST_LAYOUT = """
    CREATE TABLE requests (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        request_id TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL, claimed_at REAL NOT NULL,
        PRIMARY KEY (topic, partition, "offset"));
    CREATE INDEX requests_by_id ON requests (request_id);
    CREATE TABLE issued (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        certificate_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (certificate_id));
    CREATE INDEX issued_by_position ON issued (topic, partition, "offset");
    CREATE TABLE outputs (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        response_key BLOB NOT NULL, response BLOB NOT NULL, issued_at REAL, municipality_code TEXT,
        PRIMARY KEY (topic, partition, "offset"));
    CREATE TABLE fronts (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        sheet INTEGER NOT NULL, png BLOB NOT NULL, PRIMARY KEY (topic, partition, "offset", sheet));
    CREATE TABLE output_marks (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        PRIMARY KEY (topic, partition));
    INSERT INTO requests VALUES ('req', 0, 7, 'r-old', 'REFUSED', 'delivered', 1.0);
    INSERT INTO requests VALUES ('req', 1, 3, 'r-doubt', 'ISSUED', 'pending', 2.0);
    INSERT INTO issued VALUES ('req', 1, 3, 'c-1', x'6b', x'76');
    INSERT INTO outputs VALUES ('req', 1, 3, x'6b', x'7265', 5.0, '302066');
    INSERT INTO fronts VALUES ('req', 1, 3, 0, x'89');
    INSERT INTO output_marks VALUES ('res', 0, 41);
"""


def test_the_same_position_on_a_new_cluster_is_a_new_request(tmp_path: Path) -> None:
    ledger = RequestLedger(tmp_path / "ledger.sqlite3")
    ledger.claim([Claim(("req", 0, 0), "r-1", "REFUSED", b"r-1", b"answer")])
    assert ledger.seen("r-1", ("req", 0, 0)) is Seen.REDELIVERED
    assert ledger.seen("r-1", ("req", 0, 5)) is Seen.REPLAYED
    assert ledger.seen("r-2", ("req", 0, 0)) is Seen.NEW  # offset 0 again, another request
    ledger.claim([Claim(("req", 0, 0), "r-2", "REFUSED", b"r-2", b"answer")])  # no conflict on the position
    ledger.mark_delivered([("r-1", "req", 0, 0), ("r-2", "req", 0, 0)], {})
    assert ledger.counts() == {"delivered": 2}


def test_a_ledger_of_the_first_layout_is_migrated_with_its_claim_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(FIRST_LAYOUT)
    con.close()
    ledger = RequestLedger(path)
    assert ledger.seen("r-old", ("req", 0, 7)) is Seen.REDELIVERED
    assert ledger.seen("r-old", ("req", 0, 8)) is Seen.REPLAYED
    assert ledger.pending() == [Claim(("req", 1, 3), "r-doubt", "ISSUED", b"k", b"re",
                                      (IssuedMessage("c-1", b"k", b"v"),), 5.0, "302066", (b"\x89",))]
    assert ledger.output_marks() == {("res", 0): 41}
    ledger.close()
    assert RequestLedger(path).counts() == {"delivered": 1, "pending": 1}  # opening again changes nothing
