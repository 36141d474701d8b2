"""Fault injection from another process: a JSON-lines control channel for the embedded cluster.

Tests run the embedded cluster in a subprocess, so that the producers and consumers under test do
not share a process (and librdkafka's threads) with the brokers. `bcl cluster up --control PATH`
serves a `ControlServer` on a Unix socket; `ClusterHandle` starts such a process (or attaches to a
running one) and offers the fault-injection methods of `MockCluster`.

Protocol: one JSON object per line each way. Request {"op": "broker_down", "broker": 2};
reply {"ok": true, "result": {...}} or {"ok": false, "error": "what was wrong"}.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from infra.cluster import DEFAULT_REBALANCE_DELAY_MS, ClusterError, MockCluster

# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 107
_MAX_LINE = 1 << 20


class ControlError(ClusterError):
    """The control channel failed or the cluster refused a command."""


@dataclass(frozen=True)
class _Op:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    run: Callable[..., Any]


def _create_topic(c: MockCluster, name: str, partitions: int, replication_factor: int = 3) -> dict[str, Any]:
    spec = c.create_topic(name, partitions, replication_factor)
    return {"name": spec.name, "partitions": spec.partitions, "replication_factor": spec.replication_factor}


OPS: dict[str, _Op] = {
    "ping": _Op((), (), lambda c: {"pong": True}),
    "state": _Op((), (), lambda c: c.state()),
    "broker_down": _Op(("broker",), (), lambda c, broker: c.broker_down(broker)),
    "broker_up": _Op(("broker",), (), lambda c, broker: c.broker_up(broker)),
    "set_leader": _Op(("topic", "partition", "broker"), (), lambda c, topic, partition, broker:
                      c.set_leader(topic, partition, broker)),
    "set_rtt": _Op(("broker", "rtt_ms"), (), lambda c, broker, rtt_ms: c.set_rtt(broker, rtt_ms)),
    "push_request_errors": _Op(("api_key", "errors"), (), lambda c, api_key, errors:
                               c.push_request_errors(api_key, errors)),
    "clear_request_errors": _Op(("api_key",), (), lambda c, api_key: c.clear_request_errors(api_key)),
    "create_topic": _Op(("name", "partitions"), ("replication_factor",), _create_topic),
    "centre_fail": _Op(("centre",), (), lambda c, centre: c.fail_centre(centre)),
    "centre_restore": _Op(("centre",), (), lambda c, centre: c.restore_centre(centre)),
}


def execute(cluster: MockCluster, line: bytes | str) -> dict[str, Any]:
    """Run one request line against the cluster and return the reply object (never raises ClusterError)."""
    try:
        request = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"the request is not valid JSON: {exc}"}
    if not isinstance(request, dict):
        return {"ok": False, "error": f"the request must be a JSON object, got {type(request).__name__}"}
    op_name = request.pop("op", None)
    op = OPS.get(op_name) if isinstance(op_name, str) else None
    if op is None:
        return {"ok": False, "error": f"unknown op {op_name!r}; known ops: {', '.join(sorted(OPS))}"}
    missing = [name for name in op.required if name not in request]
    unknown = sorted(set(request) - set(op.required) - set(op.optional))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unexpected {', '.join(unknown)}")
        expected = ", ".join([*op.required, *(f"[{name}]" for name in op.optional)]) or "no arguments"
        return {"ok": False, "error": f"{op_name}: {'; '.join(parts)} (expects {expected})"}
    try:
        result = op.run(cluster, **request)
    except ClusterError as exc:
        return {"ok": False, "error": str(exc)}
    reply: dict[str, Any] = {"ok": True}
    if result is not None:
        reply["result"] = result
    return reply


class ControlServer:
    """Serves the control protocol for a MockCluster on a Unix socket, one thread per connection."""

    def __init__(self, cluster: MockCluster, path: Path) -> None:
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            raise ControlError(f"control socket path too long for a Unix socket ({_MAX_SOCKET_PATH} bytes max): {path}")
        self.path = path
        self._cluster = cluster
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ControlServer:
        log = structlog.get_logger("bcl.cluster.control")
        cluster = self._cluster

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while line := self.rfile.readline(_MAX_LINE):
                    if not line.strip():
                        continue
                    reply = execute(cluster, line)
                    if reply["ok"]:
                        log.info("control command", **_fields_of(line))
                    else:
                        log.warning("control command refused", error=reply["error"], **_fields_of(line))
                    self.wfile.write(json.dumps(reply).encode() + b"\n")

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            # Left behind by a process that was killed; a live one would still be answering.
            if _socket_answers(self.path):
                raise ControlError(f"another cluster already serves the control socket {self.path}")
            self.path.unlink()
        elif self.path.exists():
            raise ControlError(f"the control socket path {self.path} exists and is not a socket")
        server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="cluster-control", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fields_of(line: bytes) -> dict[str, Any]:
    """The request as log fields (topic names, broker ids, codes: nothing personal)."""
    try:
        request = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"op": "<invalid json>"}
    if not isinstance(request, dict):
        return {"op": "<not an object>"}
    return {"op": str(request.pop("op", None)), **{f"arg_{k}": v for k, v in request.items()}}


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


class ClusterHandle:
    """An embedded cluster in another process, driven through its control socket.

    `ClusterHandle.start(...)` launches `python -m infra.cluster_service --control ...` and waits until it is ready;
    `ClusterHandle.connect(path)` attaches to one started by hand. Methods mirror MockCluster and
    raise ClusterError (ControlError) with the cluster's own message when a command is refused.
    """

    def __init__(
        self,
        control_path: Path,
        *,
        process: subprocess.Popen[bytes] | None = None,
        log_path: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.control_path = control_path
        self.log_path = log_path
        self._process = process
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: Any = None
        # The exit status of the cluster process once stop() has ended it.
        self.exit_code: int | None = None
        self._socket_dir: Path | None = None
        state = self.state()
        self.bootstrap_servers: str = state["bootstrap_servers"]
        self.brokers: int = state["brokers"]

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        brokers: int = 3,
        data_dir: Path | None = None,
        *,
        rtt_ms: int = 0,
        rebalance_delay_ms: int = DEFAULT_REBALANCE_DELAY_MS,
        timeout: float = 30.0,
        centres: bool = False,
        centre_groups: dict[str, str] | None = None,
    ) -> ClusterHandle:
        """Launch the embedded cluster (infra.cluster_service) with its data in data_dir (bootstrap file,
        control socket, log in data_dir/cluster/) and wait until it prints its bootstrap servers."""
        if data_dir is None:
            raise ControlError("ClusterHandle.start needs a data_dir for the bootstrap file, socket and log")
        cluster_dir = data_dir / "cluster"
        cluster_dir.mkdir(parents=True, exist_ok=True)
        control_path = cluster_dir / "control.sock"
        socket_dir: Path | None = None
        if len(os.fsencode(control_path)) > _MAX_SOCKET_PATH:
            # A deep data dir would exceed the Unix socket path limit; use a short private directory.
            socket_dir = Path(tempfile.mkdtemp(prefix="bcl-ctl-"))
            control_path = socket_dir / "control.sock"
        log_path = cluster_dir / "cluster.log"
        command = [
            sys.executable, "-m", "infra.cluster_service", "--bootstrap-file", str(cluster_dir / "bootstrap.servers"),
            "--brokers", str(brokers), "--rtt-ms", str(rtt_ms),
            "--rebalance-delay-ms", str(rebalance_delay_ms), "--control", str(control_path),
            *(["--centres"] if centres else []),
            *(f"--centre-group={group}={centre}" for group, centre in (centre_groups or {}).items()),
        ]
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL)
        try:
            _wait_ready(process, log_path, timeout)
            handle = cls(control_path, process=process, log_path=log_path, timeout=timeout)
        except BaseException:
            _terminate(process, 5.0)
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)
            raise
        handle._socket_dir = socket_dir
        return handle

    @classmethod
    def connect(cls, control_path: Path, *, timeout: float = 30.0) -> ClusterHandle:
        """Attach to a cluster started elsewhere with `bcl cluster up --control PATH`; stop() leaves it running."""
        return cls(control_path, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the control connection and, if this handle started the cluster, stop its process."""
        with self._lock:
            self._disconnect()
        if self._process is not None:
            _terminate(self._process, timeout)
            self.exit_code = self._process.returncode
            self._process = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> ClusterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- the control protocol ---------------------------------------------------------------
    def request(self, op: str, **args: Any) -> Any:
        """Send one command; return its result or raise ControlError with the cluster's message."""
        line = json.dumps({"op": op, **args}).encode() + b"\n"
        with self._lock:
            try:
                if self._sock is None:
                    self._connect()
                assert self._sock is not None and self._reader is not None
                self._sock.sendall(line)
                raw = self._reader.readline(_MAX_LINE)
            except OSError as exc:
                self._disconnect()
                raise ControlError(f"control channel {self.control_path}: {exc}{self._exit_note()}") from exc
            if not raw:
                self._disconnect()
                raise ControlError(f"control channel {self.control_path} closed by the cluster{self._exit_note()}")
        reply = json.loads(raw)
        if not reply.get("ok"):
            raise ControlError(f"{op}: {reply.get('error', 'refused without a reason')}")
        return reply.get("result")

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(self.control_path))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._reader = sock.makefile("rb")

    def _disconnect(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _exit_note(self) -> str:
        if self._process is not None and self._process.poll() is not None:
            return f" (the cluster process exited with {self._process.returncode}; see {self.log_path})"
        return ""

    # -- MockCluster's methods ----------------------------------------------------------------
    def ping(self) -> None:
        self.request("ping")

    def state(self) -> dict[str, Any]:
        """Bootstrap servers, broker count, brokers down, injected rtts, topics and partition counts."""
        result: dict[str, Any] = self.request("state")
        return result

    def broker_down(self, broker_id: int) -> None:
        self.request("broker_down", broker=broker_id)

    def broker_up(self, broker_id: int) -> None:
        self.request("broker_up", broker=broker_id)

    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self.request("set_leader", topic=topic, partition=partition, broker=broker_id)

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        self.request("set_rtt", broker=broker_id, rtt_ms=rtt_ms)

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        self.request("push_request_errors", api_key=api_key, errors=list(errors))

    def clear_request_errors(self, api_key: int) -> None:
        self.request("clear_request_errors", api_key=api_key)

    def fail_centre(self, centre: str) -> dict[str, int]:
        """Lose a whole centre's brokers (its partitions led from the other centre first)."""
        return self.request("centre_fail", centre=centre)  # type: ignore[no-any-return]

    def restore_centre(self, centre: str) -> dict[str, int]:
        return self.request("centre_restore", centre=centre)  # type: ignore[no-any-return]

    def create_topic(self, name: str, partitions: int, replication_factor: int = 3) -> dict[str, Any]:
        """Create a private topic (the mock has no CreateTopics API). Returns name, partitions and the
        replication factor as applied (capped at the broker count)."""
        result: dict[str, Any] = self.request(
            "create_topic", name=name, partitions=partitions, replication_factor=replication_factor
        )
        return result


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    """The first line the cluster service prints on stdout is its bootstrap servers, once everything is ready."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = process.stdout.readline().decode().strip()
                if line:
                    return line
            if process.poll() is not None:
                raise ControlError(
                    f"the cluster process exited with {process.returncode} before it was ready: {_tail(log_path)}"
                )
    raise ControlError(f"the cluster process was not ready after {timeout:.0f} s: {_tail(log_path)}")


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) or f"(nothing in {path})"
    except OSError:
        return f"(no log at {path})"


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
