"""A JPKI certificate serial belongs to at most one current record (docs/domain.md §2.3). Pure: no I/O.

Serials are unique nationally (§2.1) and the kiosk finds the resident by the serial (§3, eligibility), so a
change that lists a serial another current record already holds — in any municipality — would hand that
person's card to somebody else. Such a change is refused (SERIAL_IN_USE) before it is applied.

Only the latest state of records counts: the holders are the records whose latest change left them
current, with the serials that change lists. A deleted record (moved out, dead) holds none, so the record a
person keeps in their former municipality does not block the new one. A change that does not become its
record's latest state (a late gap fill) is history only and is not checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.register_validation import Rejection

RecordKey = tuple[str, str]  # (municipality code, resident code)


def serial_conflict(record: RecordKey, current: bool, serials: Sequence[str],
                    holders: Mapping[str, RecordKey]) -> Rejection | None:
    """Why the record may not become current with these serials, given the holders of (at least) these serials,
    or None. Names no serial or resident. The one statement of the rule, whichever store holds the holders
    (the index the materialiser's processes share, sinks.serial_index)."""
    if not current:
        return None
    for serial in serials:
        holder = holders.get(serial)
        if holder is not None and holder != record:
            return Rejection(
                "SERIAL_IN_USE",
                f"a certificate serial of the record is held by another current record (municipality {holder[0]})",
            )
    return None
