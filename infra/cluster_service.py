"""The embedded cluster as a service: run it in the foreground until a signal, publish its bootstrap servers.

Used by `bcl cluster up` and, as `python -m infra.cluster_service`, by infra.cluster_control (tests and
drills start the cluster in a process of its own that they can kill)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

from infra.cluster import DEFAULT_REBALANCE_DELAY_MS, ClusterError, MockCluster
from infra.cluster_control import ControlServer
from infra.log import configure_logging

log = structlog.get_logger("bcl.cluster")

# SIGHUP too: closing the terminal of `bcl cluster up` must stop it cleanly and remove the bootstrap file,
# or later commands would try a cluster that is gone.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def serve(bootstrap_file: Path, *, brokers: int = 3, rtt_ms: int = 0, rebalance_delay_ms: int | None = None,
          control_path: Path | None = None, on_ready: Callable[[str], None] | None = None,
          centres: bool = False, centre_groups: dict[str, str] | None = None) -> None:
    """Run the embedded cluster until SIGINT, SIGTERM or SIGHUP.

    Creates every catalogue topic, writes the bootstrap servers to `bootstrap_file` once ready (and removes
    the file on exit), then calls on_ready(servers)."""
    refuse_if_running(bootstrap_file)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    mock = MockCluster(
        brokers,
        rebalance_delay_ms=DEFAULT_REBALANCE_DELAY_MS if rebalance_delay_ms is None else rebalance_delay_ms,
        rtt_ms=rtt_ms,
        centres=centres,
        centre_groups=centre_groups,
    )
    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    server: ControlServer | None = None
    written = False
    try:
        if control_path is not None:
            server = ControlServer(mock, control_path).start()
        servers = mock.bootstrap_servers
        bootstrap_file.parent.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed, so a reader never sees half a line.
        tmp = bootstrap_file.with_name(f".{bootstrap_file.name}.{os.getpid()}")
        tmp.write_text(servers + "\n")
        tmp.replace(bootstrap_file)
        written = True
        log.info("cluster up", bootstrap_servers=servers, brokers=brokers, topics=len(mock.topics),
                 bootstrap_file=str(bootstrap_file), control=str(control_path) if control_path else None,
                 rtt_ms=rtt_ms, pid=os.getpid())
        if on_ready is not None:
            on_ready(servers)
        stop.wait()
    finally:
        if written and bootstrap_file.exists() and bootstrap_file.read_text().strip() == mock.bootstrap_servers:
            bootstrap_file.unlink()
        if server is not None:
            server.close()
        mock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("cluster down")


def reachable(servers: str, timeout: float = 0.5) -> bool:
    """Whether any of the bootstrap servers accepts a TCP connection."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def refuse_if_running(bootstrap_file: Path) -> None:
    """Two embedded clusters on one data dir would fight over the bootstrap file; a stale file
    (its process was killed) is replaced."""
    if not bootstrap_file.exists():
        return
    servers = bootstrap_file.read_text().strip()
    if reachable(servers):
        raise ClusterError(
            f"a cluster is already running at {servers} (see {bootstrap_file}); stop it first or use another --data-dir"
        )


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cluster_service", description=__doc__)
    parser.add_argument("--bootstrap-file", type=Path, required=True)
    parser.add_argument("--brokers", type=_at_least_one, default=3)
    parser.add_argument("--rtt-ms", type=int, default=0)
    parser.add_argument("--rebalance-delay-ms", type=int, default=None)
    parser.add_argument("--control", type=Path, default=None)
    parser.add_argument("--centres", action="store_true", help="half the brokers in East, half in West")
    parser.add_argument("--centre-group", action="append", default=[], metavar="GROUP=CENTRE",
                        help="a consumer group whose coordinator stands in that centre (repeatable)")
    args = parser.parse_args(argv)
    configure_logging("json")

    def ready(servers: str) -> None:
        print(servers, flush=True)

    try:
        serve(args.bootstrap_file, brokers=args.brokers, rtt_ms=args.rtt_ms,
              rebalance_delay_ms=args.rebalance_delay_ms, control_path=args.control, on_ready=ready,
              centres=args.centres, centre_groups=dict(g.partition("=")[::2] for g in args.centre_group))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
