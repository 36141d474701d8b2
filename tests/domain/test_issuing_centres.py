"""Which centre a kiosk sends to (domain.issuing_centres): preferred, failover within fail_after, probe back."""

from __future__ import annotations

import pytest

from domain.issuing_centres import (
    CentreAvailability,
    CentreError,
    other_centre,
    parse_vendor_centres,
    preferred_centre,
    require_centre,
)


def test_the_other_centre_takes_over() -> None:
    assert other_centre("EAST") == "WEST"
    assert other_centre("west") == "EAST"


def test_an_unknown_centre_is_named_in_the_error() -> None:
    with pytest.raises(CentreError, match="unknown centre 'NORTH'"):
        require_centre("NORTH")


def test_vendor_mapping_from_the_setting() -> None:
    mapping = parse_vendor_centres("seven-eleven=EAST, lawson=west,familymart=WEST")
    assert mapping == {"seven-eleven": "EAST", "lawson": "WEST", "familymart": "WEST"}
    assert preferred_centre("lawson", mapping, "EAST") == "WEST"
    assert preferred_centre("ministop", mapping, "EAST") == "EAST"  # not in the setting: its own assignment
    assert parse_vendor_centres("") == {}
    with pytest.raises(CentreError, match="expected vendor=CENTRE, got 'lawson'"):
        parse_vendor_centres("lawson")
    with pytest.raises(CentreError, match="unknown centre 'SOUTH'"):
        parse_vendor_centres("lawson=SOUTH")


def test_a_kiosk_stays_on_its_preferred_centre_while_it_answers() -> None:
    centres = CentreAvailability(fail_after=4, probe_after=5)
    assert centres.centre_for("EAST", now=0) == "EAST"
    centres.answered("EAST")
    assert centres.centre_for("EAST", now=100) == "EAST"


def test_a_lost_centre_is_avoided_until_a_probe_is_due_and_back_once_it_answers() -> None:
    centres = CentreAvailability(fail_after=4, probe_after=5)
    centres.no_answer("EAST", now=10)
    assert centres.centre_for("EAST", now=10) == "WEST"
    assert centres.centre_for("EAST", now=14.9) == "WEST"
    assert centres.centre_for("WEST", now=12) == "WEST"  # the other vendors are not affected
    assert centres.centre_for("EAST", now=15) == "EAST"  # the probe
    assert centres.centre_for("EAST", now=15.5) == "WEST"  # one probe at a time: the others do not wait on it
    centres.no_answer("EAST", now=19)  # the probe was not answered: marked again
    assert centres.centre_for("EAST", now=20) == "WEST"
    assert centres.centre_for("EAST", now=24) == "EAST"  # the next probe
    centres.answered("EAST")  # answered: everyone is back
    assert centres.centre_for("EAST", now=24.1) == "EAST"
    assert centres.lost(now=25) == {}


def test_both_centres_lost_the_one_lost_longer_ago_is_tried() -> None:
    centres = CentreAvailability(fail_after=4, probe_after=5)
    centres.no_answer("EAST", now=10)
    centres.no_answer("WEST", now=12)
    assert centres.centre_for("EAST", now=13) == "EAST"
    assert centres.centre_for("WEST", now=13) == "EAST"
    assert centres.lost(now=13) == {"EAST": 3, "WEST": 1}


def test_times_must_be_positive() -> None:
    with pytest.raises(CentreError, match="must be positive"):
        CentreAvailability(fail_after=0)
