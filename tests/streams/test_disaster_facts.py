"""The certificate worker's index of disasters (streams.disaster_facts), fed as the worker's feed feeds it from
bcl.disaster.events: each event once, the latest its state, whatever order copies arrive in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from streams.disaster_facts import DisasterFactsIndex

TANABE, ONAGAWA = "302066", "045811"
OCCURRED = dt.datetime(2026, 11, 1, 1, 30, tzinfo=dt.UTC)


def event(sequence: int, event_type: str = "DECLARED", *, disaster_id: str = "d1",
          codes: tuple[str, ...] = (TANABE, ONAGAWA)) -> dict[str, Any]:
    """A DisasterEvent as AvroSerde decodes it."""
    return {"event_id": f"{disaster_id}-{sequence}", "sequence": sequence, "event_type": event_type,
            "disaster_id": disaster_id, "name": "令和8年紀伊半島沖地震", "kind": "TSUNAMI",
            "municipality_codes": list(codes), "occurred_at": OCCURRED, "declared_at": OCCURRED,
            "closed_at": OCCURRED + dt.timedelta(days=30) if event_type == "CLOSED" else None,
            "recorded_at": OCCURRED}


def test_each_event_once_and_the_latest_is_the_state() -> None:
    index = DisasterFactsIndex()
    assert index.apply_disaster_event(event(1))
    assert not index.apply_disaster_event(event(1))  # a redelivered copy
    [open_one] = index.declared_disasters(ONAGAWA)
    assert (open_one.disaster_id, open_one.kind.value, open_one.closed_at) == ("d1", "tsunami", None)
    assert index.declared_disasters("131016") == []
    assert index.apply_disaster_event(event(2, "CLOSED"))
    assert index.declared_disasters(TANABE) == []
    # An older event arriving late (a republished DECLARED) does not reopen the disaster.
    late = event(1) | {"event_id": "d1-1-republished"}
    assert not index.apply_disaster_event(late)
    assert index.declared_disasters(TANABE) == [] and index.events_received == 4
    # Another disaster of the same municipality is its own state.
    index.apply_disaster_event(event(3, disaster_id="d2", codes=(TANABE,)))
    assert [d.disaster_id for d in index.declared_disasters(TANABE)] == ["d2"]
