"""The cut of the link between the centres (infra.centre_link) on this machine's kernel: a process of one centre is
refused the other centre's ports, new connections and established ones, while other processes and its own
centre's ports are not; healing gives them back. Real nftables, real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from infra.centre_link import CentreLink, centre_gid

# Run under a centre's group id: connect to each port given, report per port whether the connection was accepted,
# and whether the first connection, opened before the cut, still carries bytes after it (the test cuts in between).
_PROBE = """
import socket, sys
ports = [int(p) for p in sys.argv[1:]]
held = socket.create_connection(("127.0.0.1", ports[0]), timeout=5)
print("HELD", flush=True)
sys.stdin.readline()  # the test cuts the link now
results = []
for port in ports:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        results.append("open")
    except OSError:
        results.append("refused")
try:
    held.sendall(b"x" * 10)
    held.settimeout(5)
    results.append("held" if held.recv(10) else "closed")
except OSError:
    results.append("reset")
print(" ".join(results), flush=True)
"""


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """An echo server per centre, standing in for a broker of each."""
    listeners = {c: socket.create_server(("127.0.0.1", 0)) for c in ("EAST", "WEST")}

    def serve(listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    for listener in listeners.values():
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
    yield {c: s.getsockname()[1] for c, s in listeners.items()}
    for listener in listeners.values():
        listener.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def _probe(centre: str | None, ports: list[int], link: CentreLink, cut: bool) -> list[str]:
    group = {} if centre is None else {"group": centre_gid(centre), "extra_groups": []}
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, *map(str, ports)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **group)  # type: ignore[call-overload]
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "HELD"
    if cut:
        link.cut()
    proc.stdin.write("\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=30)
    return list(out.split())


def test_a_cut_refuses_each_centre_the_other_centres_ports_and_a_heal_gives_them_back(
        servers: dict[str, int]) -> None:
    unavailable = CentreLink.unavailable()
    assert unavailable is None, unavailable
    link = CentreLink({c: [p] for c, p in servers.items()})
    east, west = servers["EAST"], servers["WEST"]
    try:
        # East's process: West's port refused, its connection to West (opened before the cut) torn down; its own
        # centre's port still open.
        assert _probe("EAST", [west, east], link, cut=True) == ["refused", "open", "reset"]
        assert link.is_cut()
        link.heal()
        assert _probe("WEST", [east, west], link, cut=True) == ["refused", "open", "reset"]
        link.heal()
        # A process of neither centre (the cluster itself, an observer) reaches both.
        assert _probe(None, [west, east], link, cut=True) == ["open", "open", "held"]
    finally:
        link.heal()
    assert not link.is_cut()
    assert _probe("EAST", [west, east], link, cut=False) == ["open", "open", "held"]
    link.heal()  # healing a healed link changes nothing
