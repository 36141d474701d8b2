"""`bcl cluster`: run the embedded Kafka-protocol cluster, show the topic catalogue, inject faults."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from streams.settings import Settings


@click.group("cluster")
def cluster() -> None:
    """The Kafka-protocol cluster: the embedded one (librdkafka's mock) and the topic catalogue."""


@cluster.command("up")
@click.option("--brokers", type=click.IntRange(1, 32), default=3, show_default=True, help="Number of brokers.")
@click.option("--rtt-ms", type=click.IntRange(0, 60_000), default=0, show_default=True,
              help="Round-trip delay every broker adds to its responses.")
@click.option("--rebalance-delay-ms", type=click.IntRange(0, 300_000), default=None,
              help="Initial rebalance delay of new consumer groups (default 200; Kafka's is 3000).")
@click.option("--control", "control_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Serve the JSON-lines fault-injection channel on this Unix socket (see infra/README.md).")
@click.pass_obj
def up(
    settings: Settings, brokers: int, rtt_ms: int, rebalance_delay_ms: int | None, control_path: Path | None
) -> None:
    """Run the embedded cluster in the foreground until Ctrl-C or SIGTERM.

    Creates every catalogue topic (replication factor capped at the broker count), prints the
    bootstrap servers on stdout once ready and writes them to DATA_DIR/cluster/bootstrap.servers,
    which other `bcl` commands read; the file is removed on exit. Data lives in memory only."""
    import structlog

    from infra.cluster import DEFAULT_REBALANCE_DELAY_MS, MockCluster
    from infra.cluster_control import ControlServer

    log = structlog.get_logger("bcl.cluster")
    bootstrap_file = settings.bootstrap_file
    _refuse_if_running(bootstrap_file)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    mock = MockCluster(
        brokers,
        rebalance_delay_ms=DEFAULT_REBALANCE_DELAY_MS if rebalance_delay_ms is None else rebalance_delay_ms,
        rtt_ms=rtt_ms,
    )
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
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
        click.echo(servers)
        click.get_text_stream("stdout").flush()
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


def _refuse_if_running(bootstrap_file: Path) -> None:
    """Two embedded clusters on one data dir would fight over the bootstrap file; a stale file
    (its process was killed) is replaced."""
    from infra.cluster import ClusterError

    if not bootstrap_file.exists():
        return
    servers = bootstrap_file.read_text().strip()
    for server in servers.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                raise ClusterError(
                    f"a cluster is already running at {servers} (see {bootstrap_file}); "
                    "stop it first or use another --data-dir"
                )
        except (OSError, ValueError):
            continue


@cluster.command("topics")
@click.option("--kafka-topics-commands", "as_commands", is_flag=True,
              help="Print kafka-topics.sh commands that create the catalogue on an Apache Kafka cluster.")
@click.option("--kafka-topics-script", "as_script", is_flag=True,
              help="Print the whole infra/production/create-topics.sh script (to regenerate it).")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def topics(as_commands: bool, as_script: bool, as_json: bool) -> None:
    """Show the topic catalogue: name, partitions, replication factor, configuration.

    The configuration applies in production; the embedded cluster ignores it (no compaction)."""
    from infra.topics import CATALOGUE, kafka_topics_commands, kafka_topics_script

    if as_commands + as_script + as_json > 1:
        raise click.UsageError("choose one of --kafka-topics-commands, --kafka-topics-script and --json")
    if as_script:
        click.echo(kafka_topics_script(), nl=False)
        return
    if as_commands:
        for line in kafka_topics_commands():
            click.echo(line)
        return
    if as_json:
        rows = [{"name": s.name, "partitions": s.partitions, "replication_factor": s.replication_factor,
                 "config": s.config, "doc": s.doc} for s in CATALOGUE]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="BCL topic catalogue")
    table.add_column("topic", no_wrap=True)
    table.add_column("partitions", justify="right")
    table.add_column("RF", justify="right")
    table.add_column("config", no_wrap=True)
    table.add_column("holds")
    for spec in CATALOGUE:
        config = "\n".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        table.add_row(spec.name, str(spec.partitions), str(spec.replication_factor), config, spec.doc)
    Console().print(table)


_OPS = ("state", "broker_down", "broker_up", "set_leader", "set_rtt", "push_request_errors",
           "clear_request_errors", "create_topic")


@cluster.command("control")
@click.argument("op", type=click.Choice(_OPS))
@click.argument("args", nargs=-1)
@click.option("--control", "control_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The control socket given to `bcl cluster up --control`.")
def control(op: str, args: tuple[str, ...], control_path: Path) -> None:
    """Send one command to a running embedded cluster. ARGS are NAME=VALUE pairs (values in JSON).

    \b
    Examples:
      bcl cluster control --control var/ctl.sock broker_down broker=2
      bcl cluster control --control var/ctl.sock set_leader topic=bcl.dlq partition=0 broker=3
      bcl cluster control --control var/ctl.sock push_request_errors api_key=0 'errors=[6,6]'
    """
    from infra.cluster_control import ClusterHandle

    parsed: dict[str, Any] = {}
    for arg in args:
        name, sep, raw = arg.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE", param_hint="ARGS")
        try:
            parsed[name] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[name] = raw  # a bare word such as a topic name
    handle = ClusterHandle.connect(control_path)
    try:
        result = handle.request(op, **parsed)
    finally:
        handle.stop()
    click.echo(json.dumps({"ok": True, **({"result": result} if result is not None else {})}))
