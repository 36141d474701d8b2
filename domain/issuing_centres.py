"""The two issuing centres (発行センター), East and West, and which one a kiosk sends a request to.

Each kiosk vendor is assigned a preferred centre (the CertificateRequest's `centre`); both centres carry
traffic normally. A kiosk that gets no answer from a centre within `fail_after` seconds marks it
unavailable and sends the same request (same request id, same signed bytes) to the other centre; while a
centre is marked, the kiosk's later requests go straight to the other one; `probe_after` seconds after it
was marked, the next request tries it again (a probe; one at a time: the requests that follow go on to the
other centre until the probe is answered, or for another `probe_after` seconds), and once the probe is answered
the kiosk is back on its preferred centre. A centre that answers is never marked. So a kiosk moves within
`fail_after` seconds of a centre's loss and is back at most `probe_after` + `fail_after` seconds after it
returns; while a centre is lost, one request in `probe_after` seconds waits `fail_after` seconds more.

Pure rules: the caller passes the time (a monotonic clock) and what it saw.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.errors import BclError
from domain.kiosk_rules import ISSUING_CENTRES

# The Kafka header naming the centre a request is sent to (on bcl.kiosk.requests) and the centre that answered
# (on bcl.kiosk.responses and bcl.kiosk.claims): the request's own `centre` field is its vendor's assignment,
# signed by the card, and stays as it was when the request goes to the other centre.
CENTRE_HEADER = "bcl-centre"
DEFAULT_FAIL_AFTER_SECONDS = 4.0  # no answer in this time: the centre is taken as lost (a render takes < 1 s)
DEFAULT_PROBE_AFTER_SECONDS = 5.0  # a lost centre is tried again this long after it was marked


class CentreError(BclError):
    """A centre name or a vendor → centre mapping that is not valid."""


def require_centre(name: str) -> str:
    centre = name.strip().upper()
    if centre not in ISSUING_CENTRES:
        raise CentreError(f"unknown centre {name!r}: the centres are {', '.join(ISSUING_CENTRES)}")
    return centre


def other_centre(centre: str) -> str:
    """The centre that takes over when `centre` is lost."""
    east, west = ISSUING_CENTRES
    return west if require_centre(centre) == east else east


def parse_vendor_centres(text: str) -> dict[str, str]:
    """`vendor=CENTRE,vendor=CENTRE` (the setting vendor_centres) → {vendor: centre}; '' → {}."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        vendor, equals, centre = part.partition("=")
        if not equals or not vendor.strip():
            raise CentreError(f"vendor_centres: expected vendor=CENTRE, got {part!r}")
        mapping[vendor.strip()] = require_centre(centre)
    return mapping


def preferred_centre(vendor: str, assigned: Mapping[str, str], default: str) -> str:
    """The vendor's centre from the mapping; `default` (the terminal's own assignment) if it names none."""
    return assigned.get(vendor, require_centre(default))


@dataclass
class CentreAvailability:
    """What one kiosk process knows of the centres: which it saw stop answering, and when. Shared by its
    terminals (threads), hence the lock."""

    fail_after: float = DEFAULT_FAIL_AFTER_SECONDS
    probe_after: float = DEFAULT_PROBE_AFTER_SECONDS
    _lost_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.fail_after <= 0 or self.probe_after <= 0:
            raise CentreError(f"fail_after and probe_after must be positive, got {self.fail_after}, "
                              f"{self.probe_after}")

    def centre_for(self, preferred: str, now: float) -> str:
        """Where to send a new request: the preferred centre unless it is marked lost and not due a probe."""
        preferred = require_centre(preferred)
        with self._lock:
            lost_at = self._lost_at.get(preferred)
            if lost_at is None:
                return preferred
            if now - lost_at >= self.probe_after:
                self._lost_at[preferred] = now  # this request is the probe: the next ones do not wait on it too
                return preferred
            other = other_centre(preferred)
            other_lost = self._lost_at.get(other)
            # Both lost: the one lost longer ago is the likelier to be back.
            if other_lost is not None and other_lost > lost_at and now - other_lost < self.probe_after:
                return preferred
            return other

    def no_answer(self, centre: str, now: float) -> None:
        """A request sent to `centre` was not answered within fail_after seconds."""
        with self._lock:
            self._lost_at[require_centre(centre)] = now

    def answered(self, centre: str) -> None:
        """`centre` answered a request: it is available."""
        with self._lock:
            self._lost_at.pop(require_centre(centre), None)

    def lost(self, now: float) -> dict[str, float]:
        """The centres marked lost and since how many seconds."""
        with self._lock:
            return {c: now - t for c, t in self._lost_at.items()}
