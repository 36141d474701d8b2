"""Who decides a kiosk request: the claims of its request id on bcl.kiosk.claims, of which the first decides.

There are two kinds of claimant. A centre's certificate worker claims a request with the answer it will emit
(streams.centre_claims). The kiosk that sent the request claims it when it gives up waiting for an answer: its
WITHDRAWN claim says "the resident is refunded, answer nothing" (kiosk_sim.withdrawal). Whatever claim of a request
id comes first in its partition decides it for everybody: a worker that finds a withdrawal first answers and issues
nothing; a kiosk that finds a worker's claim first takes that claim's answer (the resident is served, no refund).

Both kinds must agree on the partition of a request id without asking each other: it is this module's rule, and
both produce their claims to the partition it names.
"""

from __future__ import annotations

import zlib

# The headers of a claim that both claimants read: its status (ISSUED, REFUSED, or WITHDRAWN) and, on a withdrawal,
# the kiosk that withdrew.
STATUS_HEADER = "bcl-status"
KIOSK_HEADER = "bcl-kiosk"
WITHDRAWN = "WITHDRAWN"


def claim_partition(request_id: str, partitions: int) -> int:
    """The bcl.kiosk.claims partition of a request id: CRC32 of the key modulo the partition count, which is also
    librdkafka's default for a keyed message (consistent_random), named here so that no claimant depends on its
    client's partitioner."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return zlib.crc32(request_id.encode()) % partitions
