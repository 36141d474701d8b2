"""A certificate worker in its own process, for tests that kill it (SIGKILL) and start it again.

    python -m tests.streams.certificate_worker_process '<json config>'

The config names the cluster, the private topics, the world's PKI and snapshot store, and the
worker's ledger, archive and audit paths; the clock runs from the test world's anchor. It prints READY
once it serves, and its counters as `COUNTERS <json>` when it stops (as `bcl worker run` does)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from certgen.endpoints import JpkiEndpoints
from certgen.pki_directory import PkiDirectory
from infra.log import configure_logging
from sinks.snapshot_store import ParquetSnapshotStore
from streams.certificate_worker import WorkerOptions, WorkerTopics
from tests.platforms import make_platform
from tests.streams.kiosk_world import ShiftableClock


def main(config: dict[str, object]) -> None:
    configure_logging("json", str(config.get("log_level", "warning")))
    pki = PkiDirectory(Path(str(config["pki"])), JpkiEndpoints(str(config["repository_url"])))
    platform = make_platform(Path(str(config["root"])), bootstrap_servers=str(config["bootstrap"]), pki=pki,
                             snapshot_store=ParquetSnapshotStore(Path(str(config["snapshots"]))))
    worker = platform.certificate_worker(
        topic_names=WorkerTopics(**config["topics"]),  # type: ignore[arg-type]
        group_id=str(config["group_id"]),
        options=WorkerOptions(render_processes=int(config.get("render_processes", 0)),  # type: ignore[call-overload]
                              back_side=bool(config.get("back_side", False)),
                              render_time_limit=float(config.get("render_time_limit", 30.0)),  # type: ignore[arg-type]
                              centre=config.get("centre")),  # type: ignore[arg-type]
        clock=ShiftableClock())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ready = threading.Event()
    threading.Thread(target=lambda: (ready.wait(), print("READY", flush=True)), daemon=True).start()
    counters = worker.run(stop, ready)
    print("COUNTERS", json.dumps(counters.as_dict()), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
