"""The disaster-ledger processor in its own process, writing to the SQLite test sink, for tests that kill it and
start it again:

    python -m tests.streams.disaster_ledger_process '<json config>'

The config names the cluster, the topics, the consumer group, the data dir and the sink's file. It prints its
totals as `TOTALS <json>` when it stops (SIGTERM)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infra.log import configure_logging
from streams.disaster_ledger_processor import LedgerProcessorTopics
from tests.platforms import make_platform
from tests.streams.register_state_sink import SqliteRegisterStateSink


def main(config: dict[str, str]) -> None:
    configure_logging("json", config.get("log_level", "info"))
    platform = make_platform(Path(config["root"]), bootstrap_servers=config["bootstrap"],
                             log_level=config.get("log_level", "info"))
    processor = platform.disaster_ledger_processor(
        SqliteRegisterStateSink(Path(config["sink"])),
        topic_names=LedgerProcessorTopics(residents=config["residents"], dead_letters=config["dead_letters"]),
        group_id=config["group_id"],
        # Batches of at most 100: the tests' crash points name a batch by its number ("the 3rd"), which must exist
        # however many records a loaded machine lets pile up before a batch is taken (600 could be two of 500).
        batch_size=100)
    totals = processor.run()
    print("TOTALS", json.dumps(totals.as_dict()), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
