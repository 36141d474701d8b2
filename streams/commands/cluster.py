"""`bcl cluster`: run the embedded Kafka-protocol cluster, show the topic catalogue, inject faults."""

from __future__ import annotations

import json
from pathlib import Path
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
@click.option("--centres", is_flag=True,
              help="Two issuing centres: half the brokers in East, half in West, for `bcl centre` (with the control "
                   "channel at DATA_DIR/cluster/control.sock unless --control names another).")
@click.pass_obj
def up(
    settings: Settings, brokers: int, rtt_ms: int, rebalance_delay_ms: int | None, control_path: Path | None,
    centres: bool,
) -> None:
    """Run the embedded cluster in the foreground until Ctrl-C, SIGTERM or SIGHUP (terminal closed).

    Creates every catalogue topic (replication factor capped at the broker count), prints the
    bootstrap servers on stdout once ready and writes them to DATA_DIR/cluster/bootstrap.servers,
    which other `bcl` commands read; the file is removed on exit. Data lives in memory only."""
    from infra.cluster_service import serve
    from infra.metrics import serve_metrics

    serve_metrics(settings.metrics_port)

    def ready(servers: str) -> None:
        click.echo(servers)
        click.get_text_stream("stdout").flush()

    groups: dict[str, str] = {}
    if centres:
        from domain.kiosk_rules import ISSUING_CENTRES
        from streams.centre_claims import centre_group_id

        groups = {centre_group_id(c): c for c in ISSUING_CENTRES}
        if control_path is None:
            control_path = settings.control_socket
    serve(settings.bootstrap_file, brokers=brokers, rtt_ms=rtt_ms, rebalance_delay_ms=rebalance_delay_ms,
          control_path=control_path, on_ready=ready, centres=centres, centre_groups=groups)


@cluster.command("topics")
@click.option("--kafka-topics-commands", "as_commands", is_flag=True,
              help="Print kafka-topics.sh commands that create the catalogue on an Apache Kafka cluster.")
@click.option("--kafka-topics-script", "as_script", is_flag=True,
              help="Print the whole infra/production/create-topics.sh script (to regenerate it).")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
@click.option("--centres", is_flag=True,
              help="The catalogue of the cluster stretched over the two issuing centres (replication factor 4, "
                   "min.insync.replicas 2); with --kafka-topics-script, infra/production/centres/create-topics.sh.")
def topics(as_commands: bool, as_script: bool, as_json: bool, centres: bool) -> None:
    """Show the topic catalogue: name, partitions, replication factor, configuration.

    The configuration applies in production; the embedded cluster ignores it (no compaction)."""
    from infra.topics import (
        CATALOGUE,
        SINGLE_SITE,
        TWO_CENTRES,
        kafka_topics_commands,
        kafka_topics_script,
        two_centre_catalogue,
    )

    if as_commands + as_script + as_json > 1:
        raise click.UsageError("choose one of --kafka-topics-commands, --kafka-topics-script and --json")
    specs = two_centre_catalogue() if centres else CATALOGUE
    if as_script:
        click.echo(kafka_topics_script(specs, TWO_CENTRES if centres else SINGLE_SITE), nl=False)
        return
    if as_commands:
        for line in kafka_topics_commands(specs):
            click.echo(line)
        return
    if as_json:
        rows = [{"name": s.name, "partitions": s.partitions, "replication_factor": s.replication_factor,
                 "config": s.config, "doc": s.doc} for s in specs]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="BCL topic catalogue" + (" (two centres)" if centres else ""))
    table.add_column("topic", no_wrap=True)
    table.add_column("partitions", justify="right")
    table.add_column("RF", justify="right")
    table.add_column("config", no_wrap=True)
    table.add_column("holds")
    for spec in specs:
        config = "\n".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        table.add_row(spec.name, str(spec.partitions), str(spec.replication_factor), config, spec.doc)
    Console().print(table)


_OPS = ("state", "broker_down", "broker_up", "set_leader", "set_rtt", "push_request_errors",
           "clear_request_errors", "create_topic", "centre_fail", "centre_restore")


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
