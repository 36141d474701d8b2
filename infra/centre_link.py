"""The link between the two issuing centres, cut and healed on this machine (nftables), for the embedded cluster.

The embedded cluster is one process with every broker on 127.0.0.1, so "a centre" is a set of processes and a
set of broker ports: each centre's processes (its certificate worker with its renderers, its kiosks) run under
the centre's group id (`CENTRE_GIDS`, a process attribute the kernel sees on every socket, `meta skgid`), and a
cut is one nftables table that resets every TCP packet such a process sends to a broker port of the other centre
(`reject with tcp reset`: new connections are refused and established ones torn down at their next packet).
Healing deletes the table; librdkafka reconnects by itself (within its reconnect backoff, at most 10 s).

What it emulates (infra/production/centres/README.md, "link between East and West cut"): the clients of one
centre reach only that centre's brokers, so each side reads and writes only the partitions led on its side, and
the consumer groups whose coordinator stands in the other centre lose it; processes outside both centres (the
test's own observers, the cluster itself) still reach everything, as the third site does. What it does not: the
mock has no replication between brokers (one log per partition), so there is no ISR that shrinks after
`replica.lag.time.max.ms` (a leader takes `acks=all` writes at once instead of after ~10 s), no follower replica
a consumer could read stale data from in its own centre, and no controller that could move leadership; and the
cut refuses at once (a router that has lost its route answers), it does not drop packets silently until
time-outs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient

from domain.errors import BclError
from domain.kiosk_rules import ISSUING_CENTRES

# The group ids a centre's processes run under. Unnamed in /etc/group: only the nftables rules refer to them.
CENTRE_GIDS: dict[str, int] = {"EAST": 64201, "WEST": 64202}
TABLE = "bcl_centre_link"  # + the process id: two clusters' cuts on one machine (two test runs) keep apart


class CentreLinkError(BclError):
    """The link between the centres cannot be cut or healed here (no nft, not root, nft refused the rules)."""


def centre_gid(centre: str) -> int:
    if centre not in CENTRE_GIDS:
        raise CentreLinkError(f"unknown centre {centre!r}: the centres are {', '.join(ISSUING_CENTRES)}")
    return CENTRE_GIDS[centre]


def broker_ports(bootstrap_servers: str, centres: Mapping[str, list[int]],
                 timeout: float = 10.0) -> dict[str, list[int]]:
    """{centre: the TCP ports of its brokers}, from the cluster's metadata (broker id → advertised port)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=timeout)
    ports = {b.id: b.port for b in metadata.brokers.values()}
    missing = [b for ids in centres.values() for b in ids if b not in ports]
    if missing:
        raise CentreLinkError(f"the cluster's metadata names no broker {', '.join(map(str, missing))}")
    return {centre: sorted(ports[b] for b in ids) for centre, ids in centres.items()}


def cut_ruleset(ports: Mapping[str, list[int]], table: str = TABLE) -> str:
    """The nftables table of a cut: each centre's processes are refused the other centre's broker ports."""
    rules = []
    for centre, gid in CENTRE_GIDS.items():
        others = sorted(p for c, ps in ports.items() if c != centre for p in ps)
        if not others:
            raise CentreLinkError(f"the centre facing {centre} has no broker port: nothing to cut")
        rules.append(f"    meta skgid {gid} tcp dport {{ {', '.join(map(str, others))} }} reject with tcp reset")
    # Declared, deleted and declared again in one transaction: a cut replaces any earlier cut, atomically.
    return "\n".join([f"table inet {table} {{}}", f"delete table inet {table}", f"table inet {table} {{",
                      "  chain output {", "    type filter hook output priority 0; policy accept;", *rules,
                      "  }", "}", ""])


class CentreLink:
    """The link between East and West of one embedded cluster: `cut()` and `heal()`, both idempotent."""

    def __init__(self, ports: Mapping[str, list[int]], table: str | None = None) -> None:
        self.ports = dict(ports)
        self.table = table or f"{TABLE}_{os.getpid()}"

    @staticmethod
    def unavailable() -> str | None:
        """Why a cut cannot be made on this machine, or None."""
        if shutil.which("nft") is None:
            return "nft is not installed (infra/setup-machine.sh installs nftables)"
        probe = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            return f"nft cannot read the ruleset: {probe.stderr.strip() or probe.returncode} (it needs root)"
        return None

    def cut(self) -> None:
        self._nft(cut_ruleset(self.ports, self.table), "cutting the link between the centres")

    def heal(self) -> None:
        self._nft(f"table inet {self.table} {{}}\ndelete table inet {self.table}\n",
                  "healing the link between the centres")

    def is_cut(self) -> bool:
        listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
        return f"table inet {self.table}" in listing.stdout.splitlines()

    @staticmethod
    def _nft(ruleset: str, what: str) -> None:
        reason = CentreLink.unavailable()
        if reason is not None:
            raise CentreLinkError(f"{what}: {reason}")
        done = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CentreLinkError(f"{what}: nft refused the rules: {done.stderr.strip()}")
