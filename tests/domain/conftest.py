"""Fixtures of the domain tests: a card whose certificate the request rules check (real RSA, no PKI)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from domain.japan_time import JST

# The instant the request tests check at: 10:00 Japan time on a Friday, inside the service hours.
CHECKED_AT = dt.datetime(2026, 11, 20, 10, tzinfo=JST).astimezone(dt.UTC)


@pytest.fixture(scope="session")
def card() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed card certificate (serial 0xabc) valid for a day either side of CHECKED_AT."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xABC).not_valid_before(CHECKED_AT - dt.timedelta(days=1))
            .not_valid_after(CHECKED_AT + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, cert
