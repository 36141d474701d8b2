"""Where the test PKI publishes: one HTTP repository serving the CRL, the OCSP responder and the
root certificate. Certificates carry these URLs (CRL distribution point, authority information
access), so the base URL is fixed when a certificate is issued."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from certgen.errors import PkiError

CRL_PATH = "/crl/auth.crl"
OCSP_PATH = "/ocsp"
ROOT_CERT_PATH = "/certs/auth-root.cer"


@dataclass(frozen=True)
class JpkiEndpoints:
    """The repository's base URL, e.g. http://127.0.0.1:8470 (no trailing slash)."""

    base_url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise PkiError(f"the JPKI repository URL must look like http://HOST:PORT, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def crl_url(self) -> str:
        return self.base_url + CRL_PATH

    @property
    def ocsp_url(self) -> str:
        return self.base_url + OCSP_PATH

    @property
    def root_certificate_url(self) -> str:
        return self.base_url + ROOT_CERT_PATH

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port or 80
