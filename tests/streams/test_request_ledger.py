"""The request ledger (streams.request_ledger) on a real SQLite file: identity, not position; migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streams.request_ledger import Claim, IssuedMessage, RequestLedger, Seen, origin_of

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


ORIGIN = origin_of("cluster-a", 1_796_000_000_000)


def test_the_same_position_on_a_new_cluster_is_a_new_request_or_a_replay_never_a_redelivery(tmp_path: Path) -> None:
    ledger = RequestLedger(tmp_path / "ledger.sqlite3")
    ledger.claim([Claim(("req", 0, 0), "r-1", "REFUSED", b"r-1", b"answer", origin=ORIGIN)])
    assert ledger.seen("r-1", ("req", 0, 0), ORIGIN) is Seen.REDELIVERED
    assert ledger.seen("r-1", ("req", 0, 5), ORIGIN) is Seen.REPLAYED
    # Issue 8.2: a replay that lands on its old offset of a new cluster (another cluster id, or the same id
    # of a restarted process with another timestamp) is a replay, not the message re-delivered.
    assert ledger.seen("r-1", ("req", 0, 0), origin_of("cluster-b", 1_796_000_000_000)) is Seen.REPLAYED
    assert ledger.seen("r-1", ("req", 0, 0), origin_of("cluster-a", 1_796_000_000_001)) is Seen.REPLAYED
    assert ledger.seen("r-2", ("req", 0, 0), ORIGIN) is Seen.NEW  # offset 0 again, another request
    ledger.claim([Claim(("req", 0, 0), "r-2", "REFUSED", b"r-2", b"answer", origin=ORIGIN)])  # no conflict
    assert [c.origin for c in ledger.pending()] == [ORIGIN, ORIGIN]
    ledger.claim([Claim(("req", 0, 0), "r-1", "REFUSED", b"r-1", b"replayed", origin=origin_of("cluster-b", 1))])
    ledger.mark_delivered([c.key for c in ledger.pending()], {})  # a replay's refusal at the same position too
    assert ledger.counts() == {"delivered": 3}


def test_a_ledger_of_the_first_layout_is_migrated_with_its_claim_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(FIRST_LAYOUT)
    con.close()
    ledger = RequestLedger(path)
    # A migrated row's origin is unknown: it is matched on its position alone, as it was written.
    assert ledger.seen("r-old", ("req", 0, 7), ORIGIN) is Seen.REDELIVERED
    assert ledger.seen("r-old", ("req", 0, 8), ORIGIN) is Seen.REPLAYED
    assert ledger.pending() == [Claim(("req", 1, 3), "r-doubt", "ISSUED", b"k", b"re",
                                      (IssuedMessage("c-1", b"k", b"v"),), 5.0, "302066", (b"\x89",))]
    assert ledger.output_marks() == {("res", 0): 41}
    ledger.close()
    assert RequestLedger(path).counts() == {"delivered": 1, "pending": 1}  # opening again changes nothing


SECOND_LAYOUT = """
    CREATE TABLE requests (request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL, claimed_at REAL NOT NULL,
        PRIMARY KEY (request_id, topic, partition, "offset"));
    CREATE INDEX requests_by_state ON requests (state);
    CREATE TABLE issued (request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, certificate_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (certificate_id));
    CREATE INDEX issued_by_claim ON issued (request_id, topic, partition, "offset");
    CREATE TABLE outputs (request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, response_key BLOB NOT NULL, response BLOB NOT NULL, issued_at REAL,
        municipality_code TEXT, PRIMARY KEY (request_id, topic, partition, "offset"));
    CREATE TABLE fronts (request_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, sheet INTEGER NOT NULL, png BLOB NOT NULL,
        PRIMARY KEY (request_id, topic, partition, "offset", sheet));
    CREATE TABLE output_marks (topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        PRIMARY KEY (topic, partition));
    INSERT INTO requests VALUES ('r-old', 'req', 0, 7, 'REFUSED', 'delivered', 1.0);
    INSERT INTO requests VALUES ('r-doubt', 'req', 1, 3, 'ISSUED', 'pending', 2.0);
    INSERT INTO issued VALUES ('r-doubt', 'req', 1, 3, 'c-1', x'6b', x'76');
    INSERT INTO outputs VALUES ('r-doubt', 'req', 1, 3, x'6b', x'7265', 5.0, '302066');
    INSERT INTO fronts VALUES ('r-doubt', 'req', 1, 3, 0, x'89');
    INSERT INTO output_marks VALUES ('res', 0, 41);
    PRAGMA user_version=2;
"""


def test_a_ledger_without_origins_gains_them_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(SECOND_LAYOUT)
    con.close()
    ledger = RequestLedger(path)
    assert ledger.seen("r-old", ("req", 0, 7), ORIGIN) is Seen.REDELIVERED
    assert ledger.pending() == [Claim(("req", 1, 3), "r-doubt", "ISSUED", b"k", b"re",
                                      (IssuedMessage("c-1", b"k", b"v"),), 5.0, "302066", (b"\x89",))]
    ledger.claim([Claim(("req", 0, 7), "r-new", "REFUSED", b"r-new", b"answer", origin=ORIGIN)])
    assert ledger.seen("r-new", ("req", 0, 7), origin_of("cluster-b", 1)) is Seen.REPLAYED
    assert ledger.output_marks() == {("res", 0): 41}
    ledger.close()
    assert RequestLedger(path).counts() == {"delivered": 1, "pending": 2}
