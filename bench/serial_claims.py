"""The shared serial index's cost per event of a full load, in this process (no cluster): the claims the
materialiser makes, batch by batch, against the SQLite index in the snapshot store (sinks.serial_index).

    .venv/bin/python bench/serial_claims.py [--records 300000] [--batch 10000]

Records as a full load has them: about 80 % hold a card, each with two certificates (signature and user
authentication, two serials); every record is new, so a claim releases nothing (`holds=False`, as the
materialiser claims for a record outside its holders). Each batch is one transaction, as the materialiser's
poll batch; with `SerialIndex.expect` (this branch) the batch's serials are named first. The same run also
times the rebuild of the index from the holders it ended with (what a new materialiser does once). To compare
with the code before `expect`, run this file with that code first on the path (the bench then claims without
it, as the materialiser did): PYTHONPATH=<checkout of the code before> python bench/serial_claims.py"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sinks import serial_index
from sinks.serial_index import SerialIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per transaction (the poll batch)")
    args = parser.parse_args()
    rnd = random.Random(12)
    records = [(("131121", f"{n:011d}"), [f"{rnd.getrandbits(64):016x}" for _ in range(2)] if rnd.random() < 0.8
                else []) for n in range(args.records)]
    expect = hasattr(SerialIndex, "expect")
    print(f"{serial_index.__file__}: {'with' if expect else 'without'} SerialIndex.expect; "
          f"{args.records:,} records, batches of {args.batch:,}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        index = SerialIndex(Path(tmp) / "serial_holders.sqlite")
        index.rebuild([])
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, len(records), args.batch):
            batch = records[i:i + args.batch]
            with index.batch():
                if expect:
                    index.expect(serial for _, serials in batch for serial in serials)
                for record, serials in batch:
                    if serials:  # the materialiser claims only a record that lists serials or held some
                        assert index.claim(record, True, serials, holds=False) is None
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        assert len(index) == sum(len(s) for _, s in records)
        print(f"claims: {cpu:.2f} s CPU ({cpu / len(records) * 1e6:.1f} µs per event), {wall:.2f} s wall")


if __name__ == "__main__":
    main()
