"""The limits of the verification web page (`bcl verify serve`), stated once, and the two mechanisms that
enforce them per request: a token bucket per client address and a bounded admission count.

What each limit protects (docs/operations.md, "Verification", lists them with their values):
  - scans and PDF checks run in two separate thread pools: a PDF check (~0.1 s) never waits behind
    scans (1-3 s of CPU each); the scan pool is sized to the cores, leaving one to the PDF checks
    and the server's loop;
  - at most `scan_queue` scans are admitted (running or waiting): a further scan is answered 503 with
    Retry-After at once, so waiting uploads (each held in memory, at most MAX_UPLOAD_BYTES) stay bounded;
  - at most `max_in_flight` uploads are read at once (503 beyond), whatever they turn out to be, and
    each must arrive within `upload_timeout_seconds` (408 after it: a client that sends slowly does
    not hold its place for ever);
  - each check has a deadline (504 after it; a scan that already started runs to its end, which
    the pixel and sheet limits of certgen.verification bound, and holds its admission until then);
  - each client address gets `burst` verifications at once and one more every `refill_seconds`
    (429 with Retry-After beyond). The address is the connecting one: behind a reverse proxy, that
    proxy must rate-limit per client itself.
The sizes of what is decoded (pixels, working size, sheets compared) are certgen.verification's.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


def _scan_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class VerificationLimits:
    scan_workers: int = field(default_factory=_scan_workers)
    pdf_workers: int = 2
    scan_queue: int = 8  # scans admitted: running + waiting
    max_in_flight: int = 32  # uploads being read or checked
    upload_timeout_seconds: float = 60.0  # to receive the whole form (21 MiB at 3 Mbit/s)
    scan_timeout_seconds: float = 30.0
    pdf_timeout_seconds: float = 15.0
    burst: int = 10  # verifications a client may make at once ...
    refill_seconds: float = 6.0  # ... and one more every this many seconds (10 a minute)
    tracked_clients: int = 10_000  # the least recently seen client beyond this is forgotten (its bucket full)
    retry_after_seconds: int = 5  # told to a client refused because the service is busy


class ClientRateLimiter:
    """A token bucket per client address; thread-safe. Forgetting a client gives it a full bucket,
    which is what it would have after being idle, so the bound on clients tracked costs nothing."""

    def __init__(self, limits: VerificationLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the client may go ahead (a token is taken), else the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self._limits.burst), now))
            tokens = min(float(self._limits.burst), tokens + (now - at) / self._limits.refill_seconds)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) * self._limits.refill_seconds
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._limits.tracked_clients:
                self._buckets.popitem(last=False)
            return wait


def retry_after(seconds: float) -> str:
    """The Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class Admission:
    """At most `limit` holders at once; try_enter never waits (a refusal is answered at once)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self._held >= self._limit:
                return False
            self._held += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._held -= 1
