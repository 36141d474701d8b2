"""Reading a CSV file a municipality hands over (its register, sinks.disaster_ledger; its shelters, sinks.shelters):
every row made into a record, or one error naming the line and column of the first bad row, so that nothing is
half imported. The rules of a row are the caller's (a function raising domain.register_csv.RowError)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from domain.errors import BclError
from domain.register_csv import RowError

T = TypeVar("T")


def read_csv_records(path: Path, error: type[BclError], *, missing_columns: Callable[[list[str]], list[str]],
                     columns: str, record: Callable[[dict[str, str]], T], key_column: str,
                     key: Callable[[T], str]) -> list[T]:
    """Every row of the file made a record by `record`, or `error` naming the first bad row: a missing column
    (`columns` says which are expected), a row of the wrong length, a bad value, a `key` that appears twice."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            missing = missing_columns(header)
            if missing:
                raise error(f"{path} line 1: missing column(s) {', '.join(missing)} ({columns})")
            records: list[T] = []
            seen: set[str] = set()
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise error(f"{path} line {line}: {len(header)} columns expected")
                try:
                    made = record(row)
                except RowError as exc:
                    raise error(f"{path} line {line}, {exc}") from None
                if key(made) in seen:
                    raise error(f"{path} line {line}, column {key_column}: appears twice in the file")
                seen.add(key(made))
                records.append(made)
    except FileNotFoundError:
        raise error(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text") from None
    except csv.Error as exc:
        raise error(f"{path}: not CSV ({exc})") from None
    return records
