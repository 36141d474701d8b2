"""The one settings object. Built once at the entry point from arguments, the environment and an
optional TOML file; library code receives values from it and never reads the environment itself.
This is the only module that knows environment-variable names."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from domain.errors import BclError
from domain.secret_strength import secret_weakness

ENV_PREFIX = "BCL_"
# How long a bootstrap server may take to accept a connection before the cluster counts as unreachable.
CONNECT_TIMEOUT_S = 2.0


class SettingsError(BclError):
    pass


class Secret:
    """A secret setting. Its value is never in a repr, a str or a log line: only `reveal()` gives it, and only
    the composition root (streams.platform) calls it, to hand the value to the code that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    # Kafka-protocol cluster: embedded (bootstrap file written by `bcl cluster up`) or production.
    bootstrap_servers: str | None = None
    # Confluent-compatible schema registry; None means the file-backed registry (schemas/registry.lock.json).
    schema_registry_url: str | None = None
    # Where everything the platform writes lives: cluster bootstrap file, snapshot store, outputs.
    # Relative paths are taken from the working directory when the settings are loaded.
    data_dir: Path = Path("var")
    # Seed of the synthetic register: the same seed gives the same register and changes.
    seed: int = 20261121
    # Japanese font used for seal impressions and certificates (Debian fonts-ipaexfont).
    mincho_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf")
    # Gothic (sans-serif) companion for headings of reports such as billing statements (fonts-ipaexfont).
    gothic_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
    # Simulated instant of the demo's full loads (the synthetic register's day 0), Japan time.
    simulation_start: str = "2026-11-09T00:00:00+09:00"
    # Logs: "console" for people, "json" for services.
    log_format: str = "console"
    log_level: str = "info"
    # Base URL of the JPKI-TEST repository (OCSP responder, CRL, root): written into every user
    # certificate's CRL distribution point and OCSP access, served by `bcl pki ocsp-serve`.
    jpki_repository_url: str = "http://127.0.0.1:8470"
    # Secret from which each municipality's scramble-image key is derived
    # (certgen.scramble_keys.scramble_key): the certificate worker scrambles the back side with it and
    # the verification service restores scans with it. None: the data dir's own random key
    # (scramble_key_file, made on first use). There is no default: a shipped one would be public.
    # A weak value is refused (domain.secret_strength).
    scramble_key_secret: Secret | None = None
    # Port of the Prometheus `/metrics` endpoint every long-running command serves on 127.0.0.1;
    # None: a free port the OS chooses (the command logs the URL), so several commands on one host never clash.
    metrics_port: int | None = None
    # Mails of disaster support (docs/domain.md §6.3), sent by `bcl disaster mailer` through this SMTP server
    # (plain SMTP on a trusted host: a local relay, or the aiosmtpd capture of tests and `make demo`).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "bcl-disaster@bcl.example"
    # The staff address a municipality's mails go to: the template with {municipality_code} replaced, so one
    # setting names every municipality's mailbox (its staff set up a list or an alias there).
    disaster_staff_mail: str = "disaster-{municipality_code}@staff.bcl.example"
    # Issuing centres (domain.issuing_centres): vendor → preferred centre, `vendor=CENTRE,...`, over the vendors'
    # own assignment (kiosk_sim.load.VENDORS: seven-eleven → EAST, lawson and familymart → WEST, ...).
    vendor_centres: str = ""
    # A kiosk that gets no answer from its centre in this many seconds sends the request to the other one, and
    # tries its own again this many seconds later.
    centre_fail_after_seconds: int = 4
    centre_probe_after_seconds: int = 5

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "cluster"

    @property
    def bootstrap_file(self) -> Path:
        return self.cluster_dir / "bootstrap.servers"

    @property
    def control_socket(self) -> Path:
        """The embedded cluster's control channel when it runs two centres (`bcl cluster up --centres`)."""
        return self.cluster_dir / "control.sock"

    def centre_dir(self, centre: str) -> Path:
        """One issuing centre's own files: its certificate worker's ledger, archive and pid file."""
        return self.data_dir / "centres" / centre.lower()

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def keys_dir(self) -> Path:
        """The data dir's own secret keys (infra.data_dir_keys), mode 0600 in a folder of mode 0700."""
        return self.data_dir / "keys"

    @property
    def scramble_key_file(self) -> Path:
        """The data dir's scramble key secret, used when `scramble_key_secret` is not configured."""
        return self.keys_dir / "scramble-key-secret"

    @property
    def shelter_pass_key_file(self) -> Path:
        """The data dir's key of the printed shelter registration QR codes (domain.shelter_pass), made on first use."""
        return self.keys_dir / "shelter-pass-key"

    @property
    def shelter_terminals_dir(self) -> Path:
        """Where a shelter terminal keeps its local queue by default (kiosk_sim.shelter_terminal), one file each."""
        return self.data_dir / "shelter-terminals"

    @property
    def snapshot_keys_dir(self) -> Path:
        """The snapshot store's encryption keys, one key ring per municipality (infra.snapshot_keys)."""
        return self.keys_dir / "snapshot-store"

    @property
    def analyst_grants_file(self) -> Path:
        """Which municipalities each analyst may query (sinks.analyst_grants)."""
        return self.data_dir / "analysts" / "grants.toml"

    @property
    def audit_file(self) -> Path:
        return self.data_dir / "audit" / "personal-data-access.jsonl"

    @property
    def restores_dir(self) -> Path:
        """Default place of `bcl backup restore` files: they hold personal data, so inside the data dir."""
        return self.data_dir / "restores"

    @property
    def adapter_dir(self) -> Path:
        return self.data_dir / "adapter"

    @property
    def municipal_keys_dir(self) -> Path:
        """The municipalities' private signing keys (infra.municipal_keys.MunicipalKeyring): the adapter's side."""
        return self.adapter_dir / "keys"

    @property
    def trust_store_file(self) -> Path:
        """BCL's registered public keys of the municipalities (infra.municipal_keys.TrustStore)."""
        return self.data_dir / "trust" / "municipal-keys.json"

    @property
    def billing_dir(self) -> Path:
        """Billing: the participation table (participation.csv) and written statements."""
        return self.data_dir / "billing"

    @property
    def worker_clock_dir(self) -> Path:
        """Where each running certificate worker publishes its clock (streams.simulated_clock)."""
        return self.data_dir / "worker" / "clocks"

    @property
    def key_pool_dir(self) -> Path:
        """The keys of the virtual cards (certgen.keys.KeyPool), made by `bcl pki key-pool`."""
        return self.pki_dir / "key-pool"

    @property
    def worker_ledger_file(self) -> Path:
        """The certificate worker's request ledger (streams.request_ledger)."""
        return self.data_dir / "certificate_worker" / "ledger.sqlite3"

    @property
    def disaster_store_file(self) -> Path:
        """The disaster store: what staff entered for disaster support, and its outbox (sinks.disaster_store)."""
        return self.data_dir / "disaster" / "store.sqlite3"

    @property
    def ledger_processor_dir(self) -> Path:
        """The disaster-ledger processor's Faust data folder (Faust makes it; the processor keeps nothing there)."""
        return self.data_dir / "disaster" / "ledger-processor"

    @property
    def roster_processor_dir(self) -> Path:
        """The evacuation-roster processor's Faust data folder (Faust makes it; the processor keeps nothing there)."""
        return self.data_dir / "disaster" / "roster-processor"

    @property
    def kiosk_dir(self) -> Path:
        """Certificates printed by `bcl kiosk issue`: they hold personal data, so inside the data dir."""
        return self.data_dir / "kiosk"

    @property
    def statistics_dir(self) -> Path:
        """Published statistics written as files (charts, CSV)."""
        return self.data_dir / "statistics"

    @property
    def pcscd_log(self) -> Path:
        """The log of a pcscd that `bcl` started."""
        return self.data_dir / "pcscd.log"

    @property
    def issuance_dir(self) -> Path:
        """The issuance archive (sinks.issuance_archive): every issued certificate, for verification."""
        return self.data_dir / "issuance"

    def require_bootstrap_servers(self) -> str:
        """The bootstrap servers: configured, or those the running embedded cluster wrote; checked to answer.

        Every command gets its servers here, so this is where an absent cluster is caught: a
        librdkafka client would otherwise retry a refused connection for minutes (or until a 30 s
        metadata timeout), printing its own log lines instead of saying what is wrong."""
        from infra.cluster_service import reachable
        from infra.kafka import ClusterUnavailableError

        start = "start the embedded one with `bcl cluster up`"
        if self.bootstrap_servers:
            servers = self.bootstrap_servers
            if not reachable(servers, timeout=CONNECT_TIMEOUT_S):
                raise ClusterUnavailableError(
                    f"no Kafka broker answers at {servers} (the configured bootstrap servers): check the address, "
                    f"or {start} and leave {ENV_PREFIX}BOOTSTRAP_SERVERS unset"
                )
            return servers
        try:
            servers = self.bootstrap_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterUnavailableError(
                f"no Kafka cluster configured: {start} (it writes {self.bootstrap_file}) "
                f"or set {ENV_PREFIX}BOOTSTRAP_SERVERS"
            ) from None
        if not reachable(servers, timeout=CONNECT_TIMEOUT_S):
            # Left behind by a cluster that was killed (SIGKILL, a crash, a reboot): it cannot remove it.
            raise ClusterUnavailableError(
                f"the embedded cluster of {self.bootstrap_file} ({servers}) is no longer running: {start} "
                "(it replaces the stale file)"
            )
        return servers


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if raw is None:
        return None
    if "Path" in str(kind):
        return Path(raw)
    if "Secret" in str(kind):
        secret = raw if isinstance(raw, Secret) else Secret(str(raw))
        weakness = secret_weakness(secret.reveal())
        if weakness is not None:
            # Never the value itself in the message: only why it is refused.
            raise SettingsError(f"setting {name} is refused: {weakness}; leave it unset to use the data dir's own "
                                "random key, or give at least 32 random characters")
        return secret
    if kind in ("int", int, "int | None"):
        try:
            return int(raw)
        except ValueError as exc:
            raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from exc
    return str(raw)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Defaults < config file (BCL_CONFIG or config_file) < environment (BCL_*) < overrides."""
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = config_file or (Path(environ[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in environ else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read the config file {path}: {exc}") from exc
        unknown = set(data) - names
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        values.update(data)
    for name in names:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = environ[env_name]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
    return replace(settings, data_dir=settings.data_dir.expanduser().absolute())
