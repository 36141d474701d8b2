"""Virtual cards for register residents, and the load's mix of kiosks and certificates (no broker)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool, generate_rsa_key
from certgen.pki_directory import PkiDirectory
from certgen.user_certificates import CertificateKind
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.load import VENDORS, choose_kind, choose_options, eligible, make_terminals
from kiosk_sim.population import ResidentProfile, VirtualCardIssuer, profile_of, profiles_from_records
from kiosk_sim.transport import InProcessTransport

NOW = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)


def record(code: str, status: str = "CURRENT", certificates: list[dict] | None = None, seal: bool = False) -> dict:
    return {
        "municipality_code": "302040", "resident_code": code, "household_number": "0000000001", "status": status,
        "jpki_certificates": certificates if certificates is not None else [
            {"serial": f"{int(code):016x}", "kind": "CARD", "not_before": dt.date(2025, 4, 1),
             "not_after": dt.date(2030, 3, 31)}],
        "seal": {"status": "REGISTERED"} if seal else None,
        "tax_records": [{"fiscal_year": 2026}, {"fiscal_year": 2025}],
    }


def test_profiles_only_for_current_residents_with_a_certificate() -> None:
    smartphone_and_card = [
        {"serial": "00000000000000f1", "kind": "SMARTPHONE", "not_before": dt.date(2026, 1, 5),
         "not_after": dt.date(2031, 1, 4)},
        {"serial": "00000000000000c1", "kind": "CARD", "not_before": dt.date(2024, 6, 1),
         "not_after": dt.date(2029, 5, 31)},
    ]
    profiles = profiles_from_records([
        record("11"), record("12", status="DELETED"), record("13", certificates=[]),
        record("14", certificates=smartphone_and_card, seal=True),
    ])
    assert [p.resident_code for p in profiles] == ["11", "14"]
    both = profiles[1]
    assert (both.serial, both.kind, both.has_seal, both.tax_years) == ("00000000000000c1", CertificateKind.CARD,
                                                                        True, (2025, 2026))
    assert profile_of(record("12", status="DELETED")) is None


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiDirectory:
    directory = PkiDirectory(tmp_path_factory.mktemp("pki"), JpkiEndpoints("http://127.0.0.1:8470"))
    directory.initialise(NOW)
    return directory


def test_virtual_cards_carry_the_register_serial_and_are_reused(pki: PkiDirectory, tmp_path: Path) -> None:
    pool = KeyPool(tmp_path, 2)
    profiles = profiles_from_records([record("21"), record("22"), record("23")])
    issuer = VirtualCardIssuer(pki, pool)
    residents = issuer.population(profiles, NOW)
    assert (issuer.counters.issued, issuer.counters.reused) == (3, 0)
    again = VirtualCardIssuer(pki, pool)
    assert len(again.population(profiles, NOW)) == 3 and (again.counters.issued, again.counters.reused) == (0, 3)

    resident = residents[1]
    with InProcessTransport(resident.card) as transport:
        client = JpkiCardClient(transport)
        certificate = x509.load_der_x509_certificate(client.read_auth_certificate())
        signature = client.authenticate(resident.pin, b"challenge").signature
    assert f"{certificate.serial_number:016x}" == profiles[1].serial
    assert certificate.not_valid_before_utc == dt.datetime(2025, 3, 31, 15, 0, tzinfo=dt.UTC)  # 1 Apr 00:00 JST
    assert certificate.not_valid_after_utc == dt.datetime(2030, 3, 31, 14, 59, 59, tzinfo=dt.UTC)
    certificate.public_key().verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]


def test_a_serial_issued_with_another_key_gets_no_card(pki: PkiDirectory, tmp_path: Path) -> None:
    profile = profiles_from_records([record("31")])[0]
    pki.issue_card(profile.serial, CertificateKind.CARD, NOW, key=generate_rsa_key())
    issuer = VirtualCardIssuer(pki, KeyPool(tmp_path, 2))
    assert issuer.population([profile], NOW) == [] and issuer.counters.foreign == 1


def test_kiosks_follow_the_vendor_shares_and_centres() -> None:
    terminals = make_terminals(2000, ["302040"], ["302015", "302023"], random.Random(4))
    vendors = Counter(t.vendor for t in terminals)
    for vendor in VENDORS:
        assert abs(vendors[vendor.name] / 2000 - vendor.share) < 0.03, vendor
    centres = {t.vendor: t.centre for t in terminals}
    assert centres["seven-eleven"] == "EAST" and centres["lawson"] == centres["familymart"] == "WEST"
    away = sum(1 for t in terminals if t.municipality_code != "302040")
    assert 0.04 < away / 2000 < 0.08
    assert len({t.kiosk_id for t in terminals}) == 2000


def test_the_certificate_mix() -> None:
    rng = random.Random(9)
    kinds = Counter(choose_kind(rng) for _ in range(20_000))
    share = {k: n / 20_000 for k, n in kinds.items()}
    assert abs(share["RESIDENT_RECORD"] - 0.54) < 0.02
    assert abs(share["SEAL_REGISTRATION"] - 0.30) < 0.02
    assert abs(share["INCOME"] + share["TAXATION"] + share["TAX_PAYMENT"] - 0.15) < 0.02
    assert share.get("FAMILY_REGISTER", 0) + share.get("RESIDENT_RECORD_ITEMS", 0) < 0.02

    profile = ResidentProfile("302040", "41", "0000000002", "00000000000000aa", CertificateKind.CARD,
                              dt.date(2025, 1, 1), dt.date(2029, 12, 31), has_seal=False, tax_years=())
    assert not eligible(profile, "SEAL_REGISTRATION") and not eligible(profile, "INCOME")
    assert eligible(profile, "RESIDENT_RECORD")
    copies = [choose_options(profile, "RESIDENT_RECORD", rng) for _ in range(2000)]
    whole = sum(c.household_scope == "WHOLE_HOUSEHOLD" for c in copies) / 2000
    assert 0.4 < whole < 0.5 and all(c.municipality_code == "302040" for c in copies)
    assert all(c.fiscal_year is None for c in (choose_options(profile, "TAXATION", rng) for _ in range(200)))
