"""`bcl centre`: the two issuing centres, East and West, on the embedded setup (`bcl cluster up --centres`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import click

from domain.errors import BclError
from domain.issuing_centres import parse_vendor_centres, require_centre
from domain.kiosk_rules import ISSUING_CENTRES
from streams.settings import Settings


class CentreCommandError(BclError):
    """A centre command that cannot run here (no two-centre cluster, an unknown centre)."""


def _centre(value: str) -> str:
    try:
        return require_centre(value)
    except BclError as exc:
        raise click.BadParameter(str(exc), param_hint="CENTRE") from None


def _handle(settings: Settings):  # type: ignore[no-untyped-def]
    from infra.cluster_control import ClusterHandle, ControlError

    if not settings.control_socket.exists():
        raise CentreCommandError(f"no two-centre cluster on {settings.data_dir}: start it with "
                                 "`bcl cluster up --brokers 4 --centres`")
    try:
        return ClusterHandle.connect(settings.control_socket, timeout=60)  # moving ~200 leaders takes seconds
    except (ControlError, OSError) as exc:
        raise CentreCommandError(f"the cluster's control channel {settings.control_socket} does not answer: {exc}") \
            from None


def worker_pid_file(settings: Settings, centre: str) -> Path:
    """Written by `bcl worker run --centre CENTRE` while it runs: its process group (the worker and renderers)."""
    return settings.centre_dir(centre) / "worker.pid"


def _worker_pid(settings: Settings, centre: str) -> int | None:
    try:
        pid = int(worker_pid_file(settings, centre).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def vendor_assignment(settings: Settings) -> dict[str, str]:
    """Every known vendor's preferred centre: its own assignment, then the vendor_centres setting over it."""
    from kiosk_sim.load import VENDORS

    return {**{v.name: v.centre for v in VENDORS}, **parse_vendor_centres(settings.vendor_centres)}


def _kill_with_children(pid: int) -> None:
    """SIGKILL the worker and its renderer processes (its children, found in /proc), children first."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    for victim in [*children, pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


@click.group()
def centre() -> None:
    """The issuing centres East and West: which vendors each serves, their health; drills (fail, restore)."""


@centre.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Per centre: the vendors it serves, its brokers (up or failed), its worker (running or not) and the worker's
    lag on bcl.kiosk.requests (requests not yet handled)."""
    from confluent_kafka import Consumer, TopicPartition

    from infra import topics
    from streams.centre_claims import centre_group_id

    handle = _handle(settings)
    try:
        state = handle.state()
    finally:
        handle.stop()
    centres = state.get("centres") or {}
    if not centres:
        raise CentreCommandError("the cluster runs one site: start it with `bcl cluster up --brokers 4 --centres`")
    vendors = vendor_assignment(settings)
    report: dict[str, dict[str, object]] = {}
    for name in ISSUING_CENTRES:
        consumer = Consumer({"bootstrap.servers": state["bootstrap_servers"], "group.id": centre_group_id(name),
                             "enable.auto.commit": False})
        try:
            parts = [TopicPartition(topics.KIOSK_REQUESTS, p) for p in range(state["topics"][topics.KIOSK_REQUESTS])]
            committed = consumer.committed(parts, timeout=5) if not centres[name]["failed"] else []
            lag: int | None = 0
            for tp in committed:
                high = consumer.get_watermark_offsets(tp, timeout=5)[1]
                lag = (lag or 0) + high - max(tp.offset, 0)
        except Exception:  # the lag is unknown (no answer from the centre's coordinator)
            lag = None
        finally:
            consumer.close()
        if centres[name]["failed"]:
            lag = None
        report[name] = {"vendors": sorted(v for v, c in vendors.items() if c == name),
                        "brokers": centres[name]["brokers"], "brokers_failed": centres[name]["failed"],
                        "partitions_led": centres[name]["leaders"], "worker_pid": _worker_pid(settings, name),
                        "lag": lag}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    for name, r in report.items():
        health = "LOST (brokers down)" if r["brokers_failed"] else "up"
        worker = f"worker pid {r['worker_pid']}" if r["worker_pid"] else "no worker running"
        lag = "lag unknown" if r["lag"] is None else f"lag {r['lag']} requests"
        click.echo(f"{name}: {health}, brokers {r['brokers']}, leads {r['partitions_led']} partitions, {worker}, "
                   f"{lag}; vendors: {', '.join(r['vendors']) or '-'}")  # type: ignore[arg-type]


@centre.command("fail")
@click.argument("name", metavar="CENTRE", type=_centre)
@click.pass_obj
def fail(settings: Settings, name: str) -> None:
    """Lose a whole centre (a drill): SIGKILL its worker and renderers, then take its brokers down (the partitions
    it led are led from the other centre first). Kiosks move to the other centre within their failover time."""
    handle = _handle(settings)
    try:
        pid = _worker_pid(settings, name)
        if pid is not None:
            _kill_with_children(pid)
        result = handle.fail_centre(name)
    finally:
        handle.stop()
    click.echo(f"{name} lost: worker {'pid ' + str(pid) + ' killed' if pid else 'was not running'}, brokers down, "
               f"{result['leaders_moved']} partition leaders moved to the other centre")


@centre.command("restore")
@click.argument("name", metavar="CENTRE", type=_centre)
@click.pass_obj
def restore(settings: Settings, name: str) -> None:
    """Bring a lost centre's brokers back with the leadership they had; then start its worker again
    (`bcl worker run --centre CENTRE`): kiosks return to it at their next probe."""
    handle = _handle(settings)
    try:
        result = handle.restore_centre(name)
    finally:
        handle.stop()
    click.echo(f"{name} restored: brokers up, {result['leaders_moved']} partition leaders back; start its worker: "
               f"bcl worker run --centre {name}")
