"""A JPKI certificate serial belongs to at most one current record (docs/domain.md §2.3). Pure: no I/O.

Serials are unique nationally (§2.1) and the kiosk finds the resident by the serial (§3, eligibility), so a
change that lists a serial another current record already holds — in any municipality — would hand that
person's card to somebody else. Such a change is refused (SERIAL_IN_USE) before it is applied.

Only the latest state of records counts: the holders are the records whose latest change left them
current, with the serials that change lists. A deleted record (moved out, dead) holds none, so the record a
person keeps in their former municipality does not block the new one. A change that does not become its
record's latest state (a late gap fill) is history only and is not checked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from domain.register_validation import Rejection

RecordKey = tuple[str, str]  # (municipality code, resident code)


def serial_conflict(record: RecordKey, current: bool, serials: Sequence[str],
                    holders: Mapping[str, RecordKey]) -> Rejection | None:
    """Why the record may not become current with these serials, given the holders of (at least) these serials,
    or None. Names no serial or resident. The one statement of the rule, whichever store holds the holders
    (SerialHolders in memory, or the index the materialiser's processes share, sinks.serial_index)."""
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


class SerialHolders:
    """serial → the current record that lists it, and the serials each current record lists."""

    def __init__(self) -> None:
        self._holder: dict[str, RecordKey] = {}
        self._serials: dict[RecordKey, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._holder)

    def conflict(self, record: RecordKey, current: bool, serials: Sequence[str]) -> Rejection | None:
        """Why the record may not become current with these serials, or None (serial_conflict)."""
        return serial_conflict(record, current, serials, self._holder)

    def update(self, record: RecordKey, current: bool, serials: Sequence[str]) -> None:
        """The record's latest state: current with these serials, or not current (deleted or removed)."""
        for serial in self._serials.pop(record, ()):
            if self._holder.get(serial) == record:
                del self._holder[serial]
        if current and serials:
            self._serials[record] = tuple(serials)
            for serial in serials:
                # A history from before this rule may hold a serial twice: the first holder stays.
                self._holder.setdefault(serial, record)

    @classmethod
    def from_current(cls, records: Iterable[tuple[str, str, Sequence[str]]]) -> SerialHolders:
        """Rebuild from the current records' serials (municipality code, resident code, serials)."""
        holders = cls()
        for municipality_code, resident_code, serials in records:
            holders.update((municipality_code, resident_code), True, serials)
        return holders
