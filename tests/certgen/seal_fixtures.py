"""A throwaway seal hierarchy (root → municipality seal certificate) and an NSS database that trusts
its root, so pdfsig's certificate check is meaningful rather than skipped."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class SealMaterial:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def pem(self) -> tuple[bytes, bytes, bytes]:
        key_pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        return (key_pem, self.certificate.public_bytes(serialization.Encoding.PEM),
                self.root.public_bytes(serialization.Encoding.PEM))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BCL test seal"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_seal_material(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
                       root_name: str = "Test Seal Root") -> SealMaterial:
    now = dt.datetime.now(dt.UTC)
    root_key = rsa.generate_private_key(65537, 2048)
    root = (
        x509.CertificateBuilder().subject_name(_name(root_name)).issuer_name(_name(root_name))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = key or rsa.generate_private_key(65537, 2048)
    certificate = (
        x509.CertificateBuilder().subject_name(_name("横浜市 電子契印")).issuer_name(root.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # digitalSignature + nonRepudiation and no EKU: NSS accepts it for document signatures.
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return SealMaterial(root_key, root, key, certificate)


def nss_db_trusting(directory: Path, root: x509.Certificate) -> str:
    """An NSS database (certutil) in which the seal root is a trusted CA; returns pdfsig's -nssdir value."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True,
                   capture_output=True)
    root_file = directory / "root.pem"
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-A", "-d", f"sql:{directory}", "-n", "bcl-test-seal-root", "-t", "CT,C,C",
                    "-i", str(root_file)], check=True, capture_output=True)
    return f"sql:{directory}"
