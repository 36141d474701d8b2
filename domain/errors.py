"""The root of the project's exceptions, and the errors of the pure domain rules.

Every error the project raises derives from BclError; each area (certgen, sinks, schemas, infra,
kiosk_sim, streams) defines a small hierarchy under it, and the command line maps them to a one-line
message and an exit status in one place (streams/cli.py)."""

from __future__ import annotations


class BclError(Exception):
    """Something the user or operator can act on; the message says what was wrong."""


class CertificateValidationError(BclError):
    """A presented user certificate must not be trusted."""


class UnknownIssuerError(CertificateValidationError):
    """The certificate was not issued by (does not name) the trusted root."""


class ForgedCertificateError(CertificateValidationError):
    """The certificate names the trusted root but its signature does not verify against the root's key."""


class CertificateExpiredError(CertificateValidationError):
    """The certificate's validity period ended before the time of the check."""


class CertificateNotYetValidError(CertificateValidationError):
    """The certificate's validity period starts after the time of the check."""


class WrongCertificatePurposeError(CertificateValidationError):
    """The certificate is not a user-authentication certificate (key usage / extended key usage)."""


class JapaneseDateError(BclError, ValueError):
    """A date cannot be written in the Japanese era (before 1873, when Japan adopted the Gregorian calendar)."""


class ReferenceDataError(BclError):
    """The reference data shipped with the package (municipalities, towns, names) is missing or malformed."""


class UnknownMunicipalityError(BclError, LookupError):
    """A municipality code that is not among the municipalities of the reference data (or has no residents)."""


class InvalidInstantError(BclError, ValueError):
    """A time a person wrote is not ISO 8601 (domain.japan_time.parse_instant says which value and why)."""


class InvalidSerialError(BclError, ValueError):
    """A certificate serial is not 16 hexadecimal digits (or is zero): domain.certificate_serial."""


class InvalidArgumentError(BclError, ValueError):
    """A rule was given a value it cannot apply to. `argument` names the parameter (the command line shows it
    as its option: `loss_ratio` is `--loss-ratio`), `reason` says what was wrong with the value."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason
