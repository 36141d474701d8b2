"""A municipality's synthetic resident register, built deterministically from (seed, municipality,
population, as-of date) on top of the real reference data.

Records are plain dicts whose keys are exactly the fields of schemas/avro/resident.avsc, ready for
fastavro: `datetime.date` for dates, `bytes` for the seal PNG, enum symbols as strings, None for
null. Records and their nested parts are shared between versions and must be treated as read-only
(the simulator replaces a record by a changed copy instead of editing it).

What is realistic, and how:
- households and ages: see households.py (2020 census sizes, Japan's age pyramid);
- family names: the reference list is roughly in frequency order; rank r gets weight 1/(r + 20),
  which gives the most common name about 1.5 % of the households, as 佐藤 has in Japan;
  given names: uniformly among the reference names of the person's sex (the source has no weights);
- dates: birth dates from exact ages; 住民となった日 is the birth date for people born here and the
  household's move-in date otherwise (then 前住所 is an address in another municipality, chosen
  with population weights); 住所を定めた日 and the 届出日 within 14 days after it, as the law asks;
- 本籍/筆頭者 for 97 % of households (the rest stand for foreign residents, who have none);
- seals for about 45 % of adults, JPKI user certificates for about 80 % of residents (15 % of them
  also on a smartphone), tax records for the last three fiscal years of adults with an income.
The bulk of the random draws is vectorised with numpy; only the household composition and the
assembly of the dicts run per household/person in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from domain.card_lifecycle import CARD_VALIDITY_YEARS, card_validity_days
from streams.register.errors import RegisterError
from streams.register.households import HEAD, HOUSEHOLD_SIZE_WEIGHTS, HOUSEHOLD_SIZES, MALE, Member, compose
from streams.register.identifiers import Identifiers
from streams.register.office_calendar import latest_assessed_fiscal_year
from streams.register.reference import COMMON_TOWN_NAMES, Municipality, PersonName, ReferenceData, Town
from streams.register.seal_image import SealImages
from streams.register.tax import assess

Record = dict[str, Any]

DAYS_PER_YEAR = 365.2425
FAMILY_NAME_RANK_OFFSET = 20
ADULT_AGE = 18
NOTIFICATION_DEADLINE_DAYS = 14
FOREIGN_HOUSEHOLD_SHARE = 0.03
LOCAL_DOMICILE_SHARE = 0.6
BORN_HERE_HOUSEHOLD_SHARE = 0.35
MEAN_YEARS_AT_ADDRESS = 11.0
SMARTPHONE_SHARE = 0.15
TAX_YEARS_KEPT = 3
BUILDING_NAMES = (
    "コーポ若葉", "サンハイツ", "メゾン・ド・ソレイユ", "パークハイム", "グリーンコート", "ロイヤルマンション",
    "レジデンス桜", "ハイツ緑", "シャトー藤", "ライオンズマンション", "エステート松", "グランドメゾン",
)
SEPARATOR = "\u3000"


def full_name(family: str, given: str) -> str:
    """氏名 as the register writes it: family and given name separated by an ideographic space."""
    return f"{family}{SEPARATOR}{given}"


def card_certificate(serial: str, kind: str, not_before: date, not_after: date | None = None) -> Record:
    """A JPKI user-authentication certificate entry; card certificates are valid five years from issue."""
    if not_after is None:
        not_after = card_validity_days(not_before)[1]
    return {"serial": serial, "kind": kind, "not_before": not_before, "not_after": not_after}


def seal_registration(number: str, registered_on: date, png: bytes, status: str = "REGISTERED") -> Record:
    return {"registration_number": number, "registered_on": registered_on, "status": status, "impression_png": png}


def tax_record(fiscal_year: int, income_yen: int, payment: str, paid_share: float = 0.0) -> Record:
    """One fiscal year's tax; `payment` is the status for a taxpayer (exempt people are always NOT_DUE)."""
    a = assess(income_yen)
    if a.tax_exempt or payment in ("NOT_DUE", "UNPAID"):
        paid, status = 0, "NOT_DUE" if a.tax_exempt else payment
    elif payment == "PAID":
        paid, status = a.tax_yen, "PAID"
    else:
        paid = min(a.tax_yen - 100, max(100, int(a.tax_yen * paid_share) // 100 * 100))
        status = "PARTIAL"
    return {
        "fiscal_year": fiscal_year,
        "income_yen": a.income_yen,
        "taxable_income_yen": a.taxable_income_yen,
        "tax_yen": a.tax_yen,
        "tax_exempt": a.tax_exempt,
        "paid_yen": paid,
        "payment_status": status,
    }


def income_median_and_spread(age: float, sex: str) -> tuple[float, float, float]:
    """(share with an income, median 所得 in yen, lognormal sigma) for an adult of that age and sex."""
    if age < 23:
        return 0.35, 900_000.0, 0.5
    if age < 65:
        return (0.93, 3_300_000.0, 0.55) if sex == MALE else (0.75, 1_500_000.0, 0.7)
    # Pensions: after the 公的年金等控除 many pensioners' 所得 is below the non-taxable limit.
    return 0.85, 900_000.0, 0.8


class _UniformStream:
    """Floats in [0, 1) drawn from a numpy generator in large blocks, handed out one by one."""

    def __init__(self, rng: np.random.Generator, block: int) -> None:
        self._rng = rng
        self._block = max(1024, block)
        self._values: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        if self._next >= len(self._values):
            self._values = self._rng.random(self._block).tolist()
            self._next = 0
        value = self._values[self._next]
        self._next += 1
        return value


@dataclass
class RegisterContext:
    """What it takes to make records for one municipality: its towns, names, identifiers, seal images."""

    reference: ReferenceData
    municipality: Municipality
    seals: SealImages
    towns: tuple[Town, ...] = field(init=False)
    identifiers: Identifiers = field(init=False)
    family_weights: np.ndarray = field(init=False)
    other_municipalities: tuple[Municipality, ...] = field(init=False)
    other_weights: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        ref = self.reference
        self.towns = ref.towns_for(self.municipality.code)
        self.identifiers = Identifiers(ref.rank(self.municipality.code))
        weights = 1.0 / (np.arange(len(ref.family_names)) + FAMILY_NAME_RANK_OFFSET)
        self.family_weights = weights / weights.sum()
        # Where people come from: every other municipality, by population (designated cities are
        # represented by their wards, so no one is counted twice).
        others = tuple(
            m for m in ref.municipalities
            if m.code != self.municipality.code and m.population and m.kind != "designated_city"
        )
        self.other_municipalities = others
        pops = np.array([m.population for m in others], dtype=float)
        self.other_weights = pops / pops.sum()

    # --- names -------------------------------------------------------------------------------------
    def family_name(self, index: int) -> PersonName:
        return self.reference.family_names[index]

    def given_name(self, sex: str, u: float) -> PersonName:
        names = self.reference.male_given_names if sex == MALE else self.reference.female_given_names
        return names[min(len(names) - 1, int(u * len(names)))]

    # --- addresses ---------------------------------------------------------------------------------
    def address(self, town_index: int, banchi: int, go: int, building: str | None) -> Record:
        town = self.towns[town_index]
        m = self.municipality
        return {
            "prefecture": m.prefecture,
            "municipality": m.full_name,
            "town": town.name,
            "block": f"{banchi}番{go}号",
            "building": building,
            "latitude": town.lat,
            "longitude": town.lon,
        }

    def random_address(self, u: Callable[[], float]) -> Record:
        building = None
        if u() < 0.4:
            building = building_name(int(u() * len(BUILDING_NAMES)), 1 + int(u() * 8), 1 + int(u() * 8))
        return self.address(int(u() * len(self.towns)), 1 + int(u() * 40), 1 + int(u() * 30), building)

    def other_address(self, municipality_index: int, town_u: float, banchi: int, go: int) -> str:
        """前住所 in another municipality, as one string."""
        m = self.other_municipalities[municipality_index]
        return f"{m.prefecture}{m.full_name}{self._town_name(m, town_u)}{banchi}番{go}号"

    def domicile(self, municipality_index: int | None, town_u: float, banchi: int) -> str:
        """本籍: here when municipality_index is None, otherwise in that other municipality."""
        m = self.municipality if municipality_index is None else self.other_municipalities[municipality_index]
        return f"{m.prefecture}{m.full_name}{self._town_name(m, town_u)}{banchi}番地"

    def _town_name(self, m: Municipality, u: float) -> str:
        sample = self.reference.sample_towns.get(m.code)
        if sample:
            return sample[min(len(sample) - 1, int(u * len(sample)))].name
        k = min(len(COMMON_TOWN_NAMES) * 5 - 1, int(u * len(COMMON_TOWN_NAMES) * 5))
        return f"{COMMON_TOWN_NAMES[k // 5][0]}{'一二三四五'[k % 5]}丁目"

    def address_text(self, address: Record) -> str:
        """An address record as one string (for 前住所 of a move within the municipality)."""
        return (
            f"{address['prefecture']}{address['municipality']}{address['town']}{address['block']}"
            f"{address['building'] or ''}"
        )


def building_name(index: int, floor: int, room: int) -> str:
    return f"{BUILDING_NAMES[index % len(BUILDING_NAMES)]}{floor}{room:02d}号室"


def resident_record(
    ctx: RegisterContext,
    *,
    counter: int,
    household_number: str,
    head_name: str,
    relationship: str,
    family: PersonName,
    given: PersonName,
    birth_date: date,
    sex: str,
    address: Record,
    address_set_on: date,
    became_resident_on: date,
    notified_on: date,
    previous_address: str | None,
    registered_domicile: str | None,
    domicile_head: str | None,
    seal: Record | None = None,
    tax_records: list[Record] | None = None,
    jpki_certificates: list[Record] | None = None,
) -> Record:
    """A current resident record with the fields of resident.avsc, in schema order."""
    ids = ctx.identifiers
    return {
        "municipality_code": ctx.municipality.code,
        "resident_code": ids.resident_code(counter),
        "individual_number": ids.individual_number(counter),
        "household_number": household_number,
        "household_head_name": head_name,
        "relationship": relationship,
        "family_name": family.kanji,
        "given_name": given.kanji,
        "family_name_kana": family.kana,
        "given_name_kana": given.kana,
        "birth_date": birth_date,
        "sex": sex,
        "address": address,
        "address_set_on": address_set_on,
        "became_resident_on": became_resident_on,
        "notified_on": notified_on,
        "previous_address": previous_address,
        "registered_domicile": registered_domicile,
        "domicile_head": domicile_head,
        "status": "CURRENT",
        "deletion_reason": None,
        "deleted_on": None,
        "seal": seal,
        "tax_records": tax_records if tax_records is not None else [],
        "jpki_certificates": jpki_certificates if jpki_certificates is not None else [],
    }


@dataclass
class SyntheticRegister:
    """A built register and the counters to continue its identifiers."""

    context: RegisterContext
    as_of: date
    records: list[Record]
    # household number -> resident codes, head first
    households: dict[str, list[str]]
    next_resident: int
    next_household: int
    next_seal: int
    next_certificate: int


def _household_sizes(rng: np.random.Generator, population: int) -> list[int]:
    p = np.array(HOUSEHOLD_SIZE_WEIGHTS) / sum(HOUSEHOLD_SIZE_WEIGHTS)
    sizes: list[int] = []
    total = 0
    while total < population:
        batch = rng.choice(np.array(HOUSEHOLD_SIZES), size=max(16, int((population - total) / 2.1) + 16), p=p)
        for s in batch.tolist():
            if total >= population:
                break
            s = min(s, population - total)
            sizes.append(s)
            total += s
    return sizes


def build_register(
    reference: ReferenceData,
    municipality_code: str,
    *,
    seed: int,
    as_of: date,
    font_path: Path,
    population: int | None = None,
    seals: SealImages | None = None,
) -> SyntheticRegister:
    """The register of `municipality_code` at the start of `as_of` (everything in it happened before).

    `population` defaults to the municipality's real population; the same arguments always give
    the same register.
    """
    municipality = reference.municipality(municipality_code)
    if population is None:
        population = municipality.population
    if population is None or population < 1:
        raise RegisterError(
            f"the reference data has no population for {municipality.name} ({municipality_code}); pass one"
        )
    ctx = RegisterContext(reference, municipality, seals or SealImages(font_path))
    rng = np.random.default_rng([seed, int(municipality_code), 0])

    # 1. Households and their members (the only per-household Python loop of the random draws).
    sizes = _household_sizes(rng, population)
    u = _UniformStream(rng, 12 * len(sizes))
    households: list[list[Member]] = [compose(s, u) for s in sizes]
    H = len(households)
    N = population

    # 2. Per-household draws.
    fam_idx = rng.choice(len(reference.family_names), size=H, p=ctx.family_weights).tolist()
    town_idx = rng.integers(0, len(ctx.towns), size=H).tolist()
    banchi = rng.integers(1, 41, size=H).tolist()
    go = rng.integers(1, 31, size=H).tolist()
    bld_u = rng.random(H).tolist()
    bld_name = rng.integers(0, len(BUILDING_NAMES), size=H).tolist()
    bld_floor = rng.integers(1, 9, size=H).tolist()
    bld_room = rng.integers(1, 9, size=H).tolist()
    born_here = (rng.random(H) < BORN_HERE_HOUSEHOLD_SHARE).tolist()
    years_at_address = rng.exponential(MEAN_YEARS_AT_ADDRESS, size=H).tolist()
    notify_delay = rng.integers(0, NOTIFICATION_DEADLINE_DAYS, size=H).tolist()
    prev_muni = rng.choice(len(ctx.other_municipalities), size=H, p=ctx.other_weights).tolist()
    prev_town_u = rng.random(H).tolist()
    prev_banchi = rng.integers(1, 41, size=H).tolist()
    prev_go = rng.integers(1, 31, size=H).tolist()
    foreign = (rng.random(H) < FOREIGN_HOUSEHOLD_SHARE).tolist()
    local_domicile = (rng.random(H) < LOCAL_DOMICILE_SHARE).tolist()
    dom_muni = rng.choice(len(ctx.other_municipalities), size=H, p=ctx.other_weights).tolist()
    dom_town_u = rng.random(H).tolist()
    dom_banchi = rng.integers(1, 3000, size=H).tolist()

    # 3. Per-person draws.
    given_u = rng.random(N).tolist()
    late_husband_u = rng.random(N).tolist()
    lodger_family = rng.choice(len(reference.family_names), size=N, p=ctx.family_weights).tolist()
    seal_u = rng.random(N).tolist()
    seal_day_u = rng.random(N).tolist()
    card_u = rng.random(N).tolist()
    card_age_u = (rng.random(N) ** 3).tolist()  # most cards were issued in recent years (the 2020s drive)
    phone_u = rng.random(N).tolist()
    phone_day_u = rng.random(N).tolist()
    income_u = rng.random(N).tolist()
    income_z = rng.standard_normal(N).tolist()
    year_z = rng.standard_normal((N, TAX_YEARS_KEPT)).tolist()
    pay_u = rng.random((N, TAX_YEARS_KEPT)).tolist()

    as_of_ord = as_of.toordinal()
    last_day = as_of_ord - 1
    latest_fy = latest_assessed_fiscal_year(as_of - timedelta(days=1))
    fiscal_years = list(range(latest_fy - TAX_YEARS_KEPT + 1, latest_fy + 1))
    # Installments of the newest year due so far: special collection runs monthly from June.
    months_due = (as_of.year - latest_fy) * 12 + as_of.month - 6
    current_share = min(1.0, max(0.0, months_due / 12))

    ids = ctx.identifiers
    fromordinal = date.fromordinal
    records: list[Record] = []
    household_members: dict[str, list[str]] = {}
    seal_counter = 1
    cert_counter = 1
    person = 0
    for h, members in enumerate(households):
        hh_number = ids.household_number(h + 1)
        family = ctx.family_name(fam_idx[h])
        single = len(members) == 1
        building = (
            building_name(bld_name[h], bld_floor[h], bld_room[h])
            if bld_u[h] < (0.6 if single else 0.3) else None
        )
        address = ctx.address(town_idx[h], banchi[h], go[h], building)
        # Names of the members first: the head's name and the family-register head depend on them.
        names: list[tuple[PersonName, PersonName]] = []
        for k, m in enumerate(members):
            own_family = ctx.family_name(lodger_family[person + k]) if m.relationship == "同居人" else family
            names.append((own_family, ctx.given_name(m.sex, given_u[person + k])))
        head_name = full_name(names[0][0].kanji, names[0][1].kanji)
        rels = [m.relationship for m in members]
        husband = 0
        if "夫" in rels:
            husband = rels.index("夫")
        koseki_head = full_name(names[husband][0].kanji, names[husband][1].kanji)
        father = rels.index("父") if "父" in rels else None
        married_son = rels.index("子") if "子の妻" in rels else None
        domicile = None
        if not foreign[h]:
            domicile = ctx.domicile(None if local_domicile[h] else dom_muni[h], dom_town_u[h], dom_banchi[h])
        head_age = members[0].age
        moved_in_ord = last_day - int(min(years_at_address[h], max(0.0, head_age - ADULT_AGE)) * DAYS_PER_YEAR)
        previous_other = ctx.other_address(prev_muni[h], prev_town_u[h], prev_banchi[h], prev_go[h])
        codes: list[str] = []
        for k, m in enumerate(members):
            i = person + k
            fam, giv = names[k]
            birth_ord = last_day - int(m.age * DAYS_PER_YEAR)
            birth = fromordinal(birth_ord)
            rel = m.relationship
            # 住民となった日, 住所を定めた日, 前住所
            if born_here[h]:
                became_ord = birth_ord
                set_ord = max(birth_ord, moved_in_ord)
                previous = None
                if set_ord > birth_ord:
                    previous = ctx.address_text(ctx.address((town_idx[h] + 1 + h) % len(ctx.towns),
                                                            prev_banchi[h], prev_go[h], None))
            elif birth_ord >= moved_in_ord:
                became_ord = set_ord = birth_ord
                previous = None
            else:
                became_ord = set_ord = moved_in_ord
                previous = previous_other
            notified_ord = min(last_day, set_ord + notify_delay[h])
            # 本籍 and 筆頭者
            member_domicile = domicile
            if domicile is None:
                dom_head = None
            elif rel == "同居人":
                member_domicile = ctx.domicile(dom_muni[(h + k) % H], dom_town_u[h], dom_banchi[h])
                dom_head = full_name(fam.kanji, giv.kanji)
            elif rel in ("父",) or (rel == "子" and k == married_son):
                dom_head = full_name(fam.kanji, giv.kanji)
            elif rel == "母":
                dom_head = (
                    full_name(names[father][0].kanji, names[father][1].kanji) if father is not None
                    else full_name(fam.kanji, ctx.given_name(MALE, late_husband_u[i]).kanji)
                )
            elif rel in ("子の妻", "孫") and married_son is not None:
                dom_head = full_name(names[married_son][0].kanji, names[married_son][1].kanji)
            else:
                dom_head = koseki_head
            adult = m.age >= ADULT_AGE
            # 印鑑登録
            seal = None
            if adult and seal_u[i] < (0.30 if m.age < 30 else 0.50):
                first = max(became_ord, birth_ord + int(ADULT_AGE * DAYS_PER_YEAR))
                reg_ord = first + int(seal_day_u[i] * (last_day - first))
                seal = seal_registration(ids.seal_number(seal_counter), fromordinal(reg_ord), ctx.seals.png(fam.kanji))
                seal_counter += 1
                notified_ord = max(notified_ord, reg_ord)
            # JPKI user certificates
            certs: list[Record] = []
            if card_u[i] < (0.60 if m.age < 15 else 0.83):
                issued_ord = max(birth_ord, last_day - int(card_age_u[i] * CARD_VALIDITY_YEARS * 365))
                card = card_certificate(ids.jpki_serial(cert_counter), "CARD", fromordinal(issued_ord))
                cert_counter += 1
                certs.append(card)
                if m.age >= 15 and phone_u[i] < SMARTPHONE_SHARE:
                    phone_ord = issued_ord + int(phone_day_u[i] * (last_day - issued_ord))
                    certs.append(card_certificate(ids.jpki_serial(cert_counter), "SMARTPHONE",
                                                  fromordinal(phone_ord), card["not_after"]))
                    cert_counter += 1
            # Tax records of the years this adult lived here on 1 January (the assessing date).
            taxes: list[Record] = []
            if adult:
                share, median, sigma = income_median_and_spread(m.age, m.sex)
                if income_u[i] < share:
                    base = median * math.exp(sigma * income_z[i])
                    for y, fy in enumerate(fiscal_years):
                        jan1 = date(fy, 1, 1).toordinal()
                        if became_ord > jan1 or birth_ord > jan1 - int(ADULT_AGE * DAYS_PER_YEAR):
                            continue
                        income = int(base * math.exp(0.06 * year_z[i][y])) // 1000 * 1000
                        pu = pay_u[i][y]
                        if fy == latest_fy:
                            payment = (
                                "UNPAID" if pu < 0.02 and current_share > 0 else
                                "PAID" if current_share >= 1 else "NOT_DUE" if current_share <= 0 else "PARTIAL"
                            )
                            taxes.append(tax_record(fy, income, payment, current_share))
                        else:
                            payment = "PAID" if pu < 0.97 else "PARTIAL" if pu < 0.985 else "UNPAID"
                            taxes.append(tax_record(fy, income, payment, 0.5))
            record = resident_record(
                ctx,
                counter=i,
                household_number=hh_number,
                head_name=head_name,
                relationship=rel,
                family=fam,
                given=giv,
                birth_date=birth,
                sex=m.sex,
                address=address,
                address_set_on=fromordinal(set_ord),
                became_resident_on=fromordinal(became_ord),
                notified_on=fromordinal(notified_ord),
                previous_address=previous,
                registered_domicile=member_domicile,
                domicile_head=dom_head,
                seal=seal,
                tax_records=taxes,
                jpki_certificates=certs,
            )
            records.append(record)
            codes.append(record["resident_code"])
        household_members[hh_number] = codes
        person += len(members)
    return SyntheticRegister(
        context=ctx,
        as_of=as_of,
        records=records,
        households=household_members,
        next_resident=N,
        next_household=H + 1,
        next_seal=seal_counter,
        next_certificate=cert_counter,
    )


__all__ = ["HEAD", "RegisterContext", "SyntheticRegister", "build_register", "full_name", "resident_record"]
