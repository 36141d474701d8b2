"""The reference data shipped inside the package (domain/data/: municipalities, towns, names, shelters; its
sources and licences in domain/data/SOURCES.md), read through importlib.resources so that it is found the same
way from a source checkout, an editable install and an installed wheel."""

from __future__ import annotations

import csv
import io
from importlib import resources

from domain.errors import ReferenceDataError

MUNICIPALITIES_FILE = "municipalities.csv"
TOWNS_FILE = "towns_sample.csv"
FAMILY_NAMES_FILE = "names_family.csv"
GIVEN_NAMES_FILE = "names_given.csv"


def read_rows(name: str, columns: set[str]) -> list[dict[str, str]]:
    """The rows of one shipped CSV file (codes stay text); the file must have at least `columns`."""
    resource = resources.files("domain").joinpath("data", name)
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"cannot read the shipped reference data file {name}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = columns - set(reader.fieldnames or ())
    if missing:
        raise ReferenceDataError(f"the reference data file {name} lacks the columns {', '.join(sorted(missing))}")
    try:
        return list(reader)
    except csv.Error as exc:
        raise ReferenceDataError(f"the reference data file {name} is not valid CSV: {exc}") from exc


def number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ReferenceDataError(f"not a number in {name}: {value!r}") from None
