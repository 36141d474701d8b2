"""A synthetic national year of issued certificates, written straight into the snapshot store, so that the
statistics can be tried at real scale (docs/domain.md §7: about 36 million certificates a year, ~1,378
participating municipalities, ~56,000 kiosk sites).

The data is vectorised (NumPy, Arrow) and written one Japan month at a time, so memory holds one month.
Deterministic for a seed. The profile, and why:
- Volume by month: the moving season (March, April) and the tax-certificate season (June) are high,
  the summer and year-end low; on top, kiosk use grows about 15 % over the year, as it has year on year.
- Day of week: weekdays are busier (certificates are mostly for employers, schools and applications
  made during the week), Monday and Friday most; Saturdays stay strong and Sundays and national holidays
  lower but substantial, since that is when town halls are closed and kiosks are the only way.
  Nothing is issued in the kiosks' year-end break (29 Dec–3 Jan).
- Hour of day: kiosks serve 06:30–23:00; commuting hours rise, the lunch break (12–13 h) and the
  evening after work (18–20 h) are the peaks.
- Certificate types: 住民票 ~55 %, 印鑑 ~30 %, tax certificates ~15 % (所得 > 課税 > 納税), the tax share
  doubled in June and raised in July when the new assessments come out. Disaster certificates only
  exist during a declared disaster and are not generated.
- Vendors (by kiosk sites): Seven-Eleven ~45 %, Lawson ~20 %, FamilyMart ~20 %, the rest Ministop,
  terminals in town halls, supermarkets and post offices. Seven-Eleven and Ministop are served by the
  East centre, the others by the West centre.
- Municipalities: 1,378 of the 1,741 take part, larger ones more likely (together ~95 % of the
  population); a few dozen join during the year. Volume is proportional to population times a
  per-municipality propensity (log-normal), so usage per resident varies as it does in reality.
- Another municipality: 25 % of certificates of municipalities under 50,000 people are printed elsewhere,
  15 % under 300,000, 8 % above (commuters); mostly in the same prefecture.
- Copies: 90 % of requests are for one copy, 8 % two, 2 % three; each copy is one certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from domain.certificate_types import ORDINARY_CERTIFICATES
from domain.errors import BclError
from domain.japan_time import JST
from domain.kiosk_rules import ISSUING_CENTRES, SERVICE_CLOSES, SERVICE_OPENS
from domain.office_hours import is_year_end_break, japan_holidays
from sinks.certificate_log import LOG_SCHEMA, drop_month, partition_dir, write_partition
from sinks.municipalities import municipalities_table

NATIONAL_CERTIFICATES_PER_YEAR = 36_000_000
PARTICIPATING_MUNICIPALITIES = 1_378
JOINING_DURING_YEAR = 40
KIOSK_SITES = 56_000

# April .. March.
MONTH_FACTORS = np.array([1.15, 0.95, 1.05, 1.00, 0.90, 0.95, 1.00, 0.95, 0.85, 1.00, 1.00, 1.25])
YEARLY_GROWTH = 0.15
WEEKDAY_FACTORS = np.array([1.10, 1.00, 1.00, 1.00, 1.05, 0.95, 0.80])  # Monday .. Sunday
HOLIDAY_FACTOR = 0.80

# Relative demand by hour of day, 06:00 .. 22:00 (kiosks open 06:30, close 23:00).
HOURLY_DEMAND = {6: 0.2, 7: 0.5, 8: 0.9, 9: 1.1, 10: 1.2, 11: 1.3, 12: 1.7, 13: 1.4, 14: 1.1, 15: 1.1,
                 16: 1.2, 17: 1.4, 18: 1.7, 19: 1.7, 20: 1.4, 21: 1.0, 22: 0.6}
KIOSK_OPENS_MINUTE = SERVICE_OPENS.hour * 60 + SERVICE_OPENS.minute
KIOSK_CLOSES_MINUTE = SERVICE_CLOSES.hour * 60 + SERVICE_CLOSES.minute

CERTIFICATE_TYPES = tuple(str(t) for t in ORDINARY_CERTIFICATES)
TYPE_MIX = np.array([0.55, 0.30, 0.08, 0.05, 0.02])
TAX_SEASON = {6: 2.0, 7: 1.4}  # calendar month → factor on the tax certificates
# Fee levels a municipality may set for its kiosk certificates (resident record and seal, tax).
RESIDENT_FEES = np.array([200, 250, 300])
TAX_FEES = np.array([200, 300, 350])

# (vendor, share of kiosk sites, centre, id prefix)
VENDORS = (
    ("Seven-Eleven", 0.45, "EAST", "SEJ"),
    ("Lawson", 0.20, "WEST", "LAW"),
    ("FamilyMart", 0.20, "WEST", "FMT"),
    ("Ministop", 0.04, "EAST", "MNS"),
    ("Town hall terminal", 0.05, "WEST", "GOV"),
    ("Supermarket", 0.04, "WEST", "SPM"),
    ("Japan Post", 0.02, "EAST", "JPP"),
)

COPIES = np.array([1, 2, 3])
COPIES_MIX = np.array([0.90, 0.08, 0.02])
SAME_PREFECTURE_SHARE = 0.8

_EPOCH = date(1970, 1, 1)
# Japan keeps no daylight saving time, so one offset turns every Japan-time millisecond into UTC.
_JAPAN_OFFSET_MS = int(JST.utcoffset(datetime(2000, 1, 1)).total_seconds() * 1000)


class NationalYearError(BclError):
    pass


@dataclass(frozen=True)
class Country:
    """The static side of a synthetic year: municipalities, their participation and fees, the kiosk sites."""

    codes: np.ndarray  # municipality codes (str), ordered
    prefecture: np.ndarray  # prefecture index per municipality
    population: np.ndarray
    weight: np.ndarray  # relative issuance volume (population × propensity)
    join_month_index: np.ndarray  # 0..11 within the fiscal year; -1 = before the year; 99 = not taking part
    p_other: np.ndarray  # chance a certificate is printed in another municipality
    fees: np.ndarray  # (municipality, type) → yen
    kiosk_ids: np.ndarray  # str
    kiosk_vendor: np.ndarray  # vendor index per kiosk
    kiosk_start: np.ndarray  # first kiosk of each municipality (kiosks are grouped by municipality)
    kiosk_count: np.ndarray


def build_country(seed: int) -> Country:
    table = municipalities_table()
    rng = np.random.default_rng([seed, 1])
    codes = np.array(table["code"].to_pylist())
    prefectures = table["prefecture"].to_pylist()
    prefecture_names = sorted(set(prefectures))
    prefecture = np.array([prefecture_names.index(p) for p in prefectures])
    population = np.array(table["population"].to_pylist(), dtype=np.int64)
    n = len(codes)
    if n < PARTICIPATING_MUNICIPALITIES:
        raise NationalYearError(
            f"the reference data has {n} municipalities, fewer than the {PARTICIPATING_MUNICIPALITIES} that take part"
        )

    # Participation: weighted sampling without replacement (Gumbel top-k), larger municipalities likelier.
    keys = 0.5 * np.log(population) + rng.gumbel(size=n)
    participating = np.argsort(-keys)[:PARTICIPATING_MUNICIPALITIES]
    join = np.full(n, 99)
    join[participating] = -1
    joining = rng.choice(participating[len(participating) // 2:], size=JOINING_DURING_YEAR, replace=False)
    join[joining] = rng.integers(1, 12, size=JOINING_DURING_YEAR)

    propensity = rng.lognormal(mean=0.0, sigma=0.3, size=n)
    weight = population * propensity
    p_other = np.where(population < 50_000, 0.25, np.where(population < 300_000, 0.15, 0.08))

    fees = np.empty((n, len(CERTIFICATE_TYPES)), dtype=np.int32)
    fees[:, 0] = RESIDENT_FEES[rng.integers(0, len(RESIDENT_FEES), size=n)]
    fees[:, 1] = fees[:, 0]
    fees[:, 2:] = TAX_FEES[rng.integers(0, len(TAX_FEES), size=n)][:, None]

    kiosk_count = np.maximum(1, np.round(KIOSK_SITES * population / population.sum()).astype(np.int64))
    kiosk_start = np.concatenate([[0], np.cumsum(kiosk_count)[:-1]])
    shares = np.array([v[1] for v in VENDORS])
    kiosk_vendor = rng.choice(len(VENDORS), size=int(kiosk_count.sum()), p=shares / shares.sum())
    owner = np.repeat(np.arange(n), kiosk_count)
    serial = np.arange(int(kiosk_count.sum())) - kiosk_start[owner]
    prefixes = np.array([v[3] for v in VENDORS])
    kiosk_ids = np.char.add(np.char.add(np.char.add(prefixes[kiosk_vendor], "-"), codes[owner]),
                            np.char.add("-", np.char.zfill(serial.astype(str), 4)))
    return Country(codes, prefecture, population, weight, join, p_other, fees, kiosk_ids, kiosk_vendor,
                   kiosk_start, kiosk_count)


def _uuid4_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n random version-4 UUIDs as an Arrow string array, built from buffers (no Python string per row)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = hexdigits[raw >> 4]
    nibbles[:, 1::2] = hexdigits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + stop - start] = nibbles[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def _minute_weights() -> np.ndarray:
    minutes = np.arange(KIOSK_OPENS_MINUTE, KIOSK_CLOSES_MINUTE)
    weights = np.array([HOURLY_DEMAND[m // 60] for m in minutes], dtype=float)
    return weights / weights.sum()


def _month_days(fiscal_year: int, month_index: int) -> tuple[int, int, list[date]]:
    month = (month_index + 3) % 12 + 1
    year = fiscal_year if month >= 4 else fiscal_year + 1
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return year, month, [first + timedelta(days=i) for i in range((following - first).days)]


def _month_totals(total: int) -> np.ndarray:
    factors = MONTH_FACTORS * (1 + YEARLY_GROWTH * np.arange(12) / 11)
    exact = total * factors / factors.sum()
    totals = np.floor(exact).astype(np.int64)
    totals[np.argsort(totals - exact)[: total - totals.sum()]] += 1  # largest remainders keep the total exact
    return totals


def _dictionary(indices: np.ndarray, values: np.ndarray | list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), pa.array(list(values), pa.string()))


def generate_month(country: Country, fiscal_year: int, month_index: int, certificates: int, seed: int) -> pa.Table:
    """About `certificates` issued certificates for one month (exactly: requests × copies), as LOG_SCHEMA."""
    rng = np.random.default_rng([seed, fiscal_year, month_index])
    _, month, days = _month_days(fiscal_year, month_index)
    national_holidays = japan_holidays({d.year for d in days})
    day_weights = np.array([
        0.0 if is_year_end_break(d)
        else WEEKDAY_FACTORS[d.weekday()] * (HOLIDAY_FACTOR if d in national_holidays else 1.0)
        for d in days
    ])
    requests = round(certificates / float(COPIES @ COPIES_MIX))
    per_day = rng.multinomial(requests, day_weights / day_weights.sum())
    day = np.repeat(np.arange(len(days)), per_day)
    minute = KIOSK_OPENS_MINUTE + rng.choice(KIOSK_CLOSES_MINUTE - KIOSK_OPENS_MINUTE, size=requests,
                                             p=_minute_weights())
    epoch_day = np.array([(d - _EPOCH).days for d in days], dtype=np.int64)[day]
    millis_of_minute = rng.integers(0, 60_000, size=requests)
    issued_ms = (epoch_day * 86_400_000 + minute * 60_000 + millis_of_minute) - _JAPAN_OFFSET_MS
    order = np.argsort(issued_ms, kind="stable")
    issued_ms, minute, epoch_day = issued_ms[order], minute[order], epoch_day[order]

    active = np.flatnonzero(country.join_month_index <= month_index)
    weights = country.weight[active] / country.weight[active].sum()
    municipality = active[rng.choice(len(active), size=requests, p=weights)]

    mix = TYPE_MIX.copy()
    mix[2:] *= TAX_SEASON.get(month, 1.0)
    certificate_type = rng.choice(len(CERTIFICATE_TYPES), size=requests, p=mix / mix.sum())

    # Where the kiosk stands: home, or another municipality (mostly in the same prefecture).
    kiosk_municipality = municipality.copy()
    away = np.flatnonzero(rng.random(requests) < country.p_other[municipality])
    population_p = country.population / country.population.sum()
    national = rng.choice(len(country.codes), size=len(away), p=population_p)
    same_prefecture = rng.random(len(away)) < SAME_PREFECTURE_SHARE
    for p in np.unique(country.prefecture[municipality[away]]):
        rows = np.flatnonzero(same_prefecture & (country.prefecture[municipality[away]] == p))
        members = np.flatnonzero(country.prefecture == p)
        if len(members) > 1 and len(rows):
            pick = members[rng.choice(len(members), size=len(rows), p=country.population[members] /
                                      country.population[members].sum())]
            national[rows] = pick
    home = municipality[away]
    national = np.where(national == home, rng.choice(len(country.codes), size=len(away), p=population_p), national)
    kiosk_municipality[away] = national
    kiosk = country.kiosk_start[kiosk_municipality] + (
        rng.random(requests) * country.kiosk_count[kiosk_municipality]).astype(np.int64)
    vendor = country.kiosk_vendor[kiosk]

    copies = rng.choice(COPIES, size=requests, p=COPIES_MIX)
    row_request = np.repeat(np.arange(requests), copies)
    n = len(row_request)
    first_row = np.concatenate([[0], np.cumsum(copies)[:-1]])
    copy_number = np.arange(n) - first_row[row_request] + 1
    row_type = certificate_type[row_request]
    extra_pages = (rng.random(n) < 0.08).astype(np.int16) + (rng.random(n) < 0.01)
    pages = np.where(row_type == 0, 1 + extra_pages, 1).astype(np.int16)
    row_municipality = municipality[row_request]
    centre_of_vendor = np.array([ISSUING_CENTRES.index(v[2]) for v in VENDORS])

    columns = {
        "certificate_id": _uuid4_strings(rng, n),
        "request_id": _uuid4_strings(rng, requests).take(pa.array(row_request)),
        "municipality_code": _dictionary(row_municipality, country.codes),
        "certificate_type": _dictionary(row_type, CERTIFICATE_TYPES),
        "copy_number": pa.array(copy_number.astype(np.int16)),
        "copies": pa.array(copies[row_request].astype(np.int16)),
        "pages": pa.array(pages),
        "kiosk_id": _dictionary(kiosk[row_request], country.kiosk_ids),
        "kiosk_vendor": _dictionary(vendor[row_request], [v[0] for v in VENDORS]),
        "centre": _dictionary(centre_of_vendor[vendor[row_request]], ISSUING_CENTRES),
        "kiosk_municipality_code": _dictionary(kiosk_municipality[row_request], country.codes),
        "issued_at": pa.array(issued_ms[row_request], type=pa.timestamp("ms", tz="UTC")),
        "fee_yen": pa.array(country.fees[row_municipality, row_type]),
        "issued_date": pa.array(epoch_day[row_request].astype(np.int32), type=pa.date32()),
        "issued_minute": pa.array(minute[row_request].astype(np.int16)),
    }
    return pa.Table.from_arrays([columns[f.name] for f in LOG_SCHEMA], schema=LOG_SCHEMA)


def generate_year(
    snapshot_dir: Path,
    fiscal_year: int,
    seed: int,
    scale: float = 1.0,
    replace: bool = False,
    on_month: Callable[[int, int, int], None] | None = None,
) -> int:
    """Write twelve months (April..March of fiscal_year) of synthetic certificates into the snapshot store,
    about 36 million × scale. Refuses to add to months that already hold data unless replace is set, which
    drops those months first. on_month(year, month, rows) reports progress. Returns the rows written."""
    if not 0 < scale <= 10:
        raise NationalYearError(f"scale must be in (0, 10], got {scale}")
    months = [_month_days(fiscal_year, i)[:2] for i in range(12)]
    taken = [f"{y}-{m:02d}" for y, m in months if any(partition_dir(snapshot_dir, y, m).glob("part-*.parquet"))]
    if taken and not replace:
        raise NationalYearError(
            f"the issued-certificate log already holds {', '.join(taken)}; use --replace to regenerate them"
        )
    country = build_country(seed)
    totals = _month_totals(round(NATIONAL_CERTIFICATES_PER_YEAR * scale))
    written = 0
    for index, (year, month) in enumerate(months):
        table = generate_month(country, fiscal_year, index, int(totals[index]), seed)
        if replace:
            drop_month(snapshot_dir, year, month)
        write_partition(snapshot_dir, year, month, table)
        written += table.num_rows
        if on_month is not None:
            on_month(year, month, table.num_rows)
    return written
