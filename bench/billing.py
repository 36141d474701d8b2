"""Benchmark: the billing ledger and statements for one month of a big municipality.

A month of Yokohama (3.77 million residents) at a leading municipality's kiosk use (~78 % of residents a
year) is about 250,000 certificates. The benchmark writes them through the ledger in processor-sized batches
(10,000), restarts (index rebuilt from the log), replays every event (all duplicates), then builds the
monthly and fiscal-year statements (PDF + CSV). Prints figures; asserts nothing.

    .venv/bin/python bench/billing.py [--certificates 250000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from domain.billing import BillingMonth
from domain.japan_time import JST
from infra.log import configure_logging
from sinks.billing_statement import write_csv, write_pdf
from sinks.billing_totals import fiscal_year_statement, monthly_statement
from sinks.certificate_ledger import CertificateLedger
from sinks.certificate_log import part_files
from streams.settings import load_settings

YOKOHAMA = "141003"
TYPES = ("RESIDENT_RECORD", "SEAL_REGISTRATION", "INCOME", "TAXATION", "TAX_PAYMENT")
VENDORS = ("Seven-Eleven", "Lawson", "FamilyMart", "Ministop")


def events(n: int) -> list[dict[str, Any]]:
    start = dt.datetime(2025, 11, 1, tzinfo=JST).astimezone(dt.UTC)
    step = dt.timedelta(days=30) / n
    return [
        {"certificate_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()), "municipality_code": YOKOHAMA,
         "certificate_type": TYPES[i % 5], "copy_number": 1, "copies": 1, "pages": 1, "kiosk_id": f"K{i % 900}",
         "kiosk_vendor": VENDORS[i % 4], "centre": "EAST", "kiosk_municipality_code": YOKOHAMA,
         "issued_at": start + i * step, "fee_yen": 300}
        for i in range(n)
    ]


def batches(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=250_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    configure_logging("console", "warning")
    settings = load_settings()
    data = events(args.certificates)
    with tempfile.TemporaryDirectory() as folder:
        snapshot_dir = Path(folder) / "snapshots"
        ledger = CertificateLedger(snapshot_dir)
        t = time.perf_counter()
        slowest = 0.0
        for batch in batches(data, args.batch):
            b = time.perf_counter()
            ledger.record(batch)
            slowest = max(slowest, time.perf_counter() - b)
        write = time.perf_counter() - t
        ledger.close()
        print(f"write {args.certificates:,} new certificates in batches of {args.batch:,}: {write:.2f} s "
              f"({args.certificates / write:,.0f}/s), slowest batch {slowest * 1000:.0f} ms, "
              f"{len(part_files(snapshot_dir))} part files")

        restarted = CertificateLedger(snapshot_dir)
        t = time.perf_counter()
        known = restarted.known(BillingMonth(2025, 11))
        print(f"restart: index of {known:,} certificates rebuilt from the log in {time.perf_counter() - t:.2f} s "
              f"({known * 8 / 2**20:.1f} MiB of hashes)")
        t = time.perf_counter()
        slowest = 0.0
        duplicates = 0
        for batch in batches(data, args.batch):
            b = time.perf_counter()
            duplicates += restarted.record(batch).duplicates
            slowest = max(slowest, time.perf_counter() - b)
        replay = time.perf_counter() - t
        print(f"replay of all {duplicates:,} events (every one a duplicate, confirmed against the log): "
              f"{replay:.2f} s, slowest batch {slowest * 1000:.0f} ms")
        restarted.close()

        day = dt.date(2025, 12, 5)
        out = Path(folder) / "statements"
        t = time.perf_counter()
        month = monthly_statement(snapshot_dir, YOKOHAMA, BillingMonth(2025, 11), day)
        query = time.perf_counter() - t
        write_pdf(month, out / "m.pdf", mincho_font=settings.mincho_font, gothic_font=settings.gothic_font)
        write_csv(month, out / "m.csv")
        print(f"monthly statement: query {query * 1000:.0f} ms, total with PDF and CSV "
              f"{time.perf_counter() - t:.2f} s ({month.settlement.certificates:,} certificates)")
        t = time.perf_counter()
        year = fiscal_year_statement(snapshot_dir, out / "participation.csv", YOKOHAMA,
                                     2025, day)
        write_pdf(year, out / "y.pdf", mincho_font=settings.mincho_font, gothic_font=settings.gothic_font)
        print(f"fiscal-year statement with PDF: {time.perf_counter() - t:.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (includes the "
          f"{args.certificates:,} event dicts of the benchmark itself)")


if __name__ == "__main__":
    main()
