"""The embedded cluster's two centres: which brokers stand in East and which in West, and who leads what.

It models the production design of infra/production/centres/ (one cluster stretched over both centres,
`broker.rack` = the centre, replicas in both, the KRaft controller quorum's tie-breaker at a third site) on
librdkafka's mock: the first half of the brokers is East, the second half West; partitions are led in turn by
a broker of each centre, so both centres carry traffic normally.
"""

from __future__ import annotations

from domain.kiosk_rules import ISSUING_CENTRES


def centre_brokers(brokers: int) -> dict[str, list[int]]:
    """{centre: broker ids}: 1..n/2 in East, n/2+1..n in West."""
    half = brokers // 2
    east, west = ISSUING_CENTRES
    return {east: list(range(1, half + 1)), west: list(range(half + 1, brokers + 1))}


def preferred_leader(centres: dict[str, list[int]], partition: int) -> int:
    """The broker that leads a partition when both centres run: East, West, East, … (then the next broker)."""
    east, west = (centres[c] for c in ISSUING_CENTRES)
    interleaved = [b for pair in zip(east, west, strict=True) for b in pair]
    return interleaved[partition % len(interleaved)]
