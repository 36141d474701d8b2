"""The composition root: every processor and service of the platform, built from the one settings object.

The command line, the demo, the benchmarks and the tests build what they run here; nothing else constructs
a processor, the schema registry, the snapshot store, the PKI directory or the card key pool, and only this
module reveals the secrets of the settings to the code that needs them. What a caller may vary (topics and a
group of its own for an isolated test, batch sizes, a clock, worker options) is passed as keyword arguments;
everything else comes from the settings. A test that shares one PKI or snapshot store between several
platforms passes them in.

Built lazily: a command that only restores a backup never opens the PKI, and one that needs no cluster
never asks for bootstrap servers."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from certgen.card_trust import CardTrust
from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.scramble_keys import scramble_key
from domain.issuing_centres import CentreAvailability, parse_vendor_centres
from infra import topics
from infra.data_dir_keys import data_dir_secret
from infra.municipal_keys import MunicipalKeyring, TrustStore
from infra.register_signing import RegisterSigner, SignatureVerifier
from infra.snapshot_keys import KeyFileKeyring
from kiosk_sim.kiosk import KioskConnection
from kiosk_sim.population import VirtualCardIssuer
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, make_registry
from schemas.wire import AvroSerde
from sinks.analytics import AnalystSession
from sinks.damage_assessment import DamageAssessment
from sinks.disaster_applications import DisasterApplications
from sinks.disaster_ledger import DisasterLedger
from sinks.disaster_store import DisasterStore
from sinks.evacuation_plans import EvacuationPlans
from sinks.evacuation_roster import EvacuationRoster
from sinks.mail_outbox import MailOutbox
from sinks.shelters import Shelters
from sinks.snapshot_store import ParquetSnapshotStore
from sinks.staff_accounts import StaffAccounts
from streams.application_intake import ApplicationIntake
from streams.billing import BillingProcessor
from streams.card_lifecycle import DEFAULT_KEY_POOL_SIZE, CardLifecycleProcessor
from streams.certificate_worker import CertificateWorker, Clock, WorkerOptions, WorkerResources, utc_now
from streams.disaster_ledger_processor import DisasterLedgerProcessor, RegisterStateSink
from streams.disaster_mailer import DisasterMailer
from streams.disaster_relay import DisasterRelay
from streams.evacuation_roster_processor import EvacuationRosterProcessor, RosterSink
from streams.materialiser import BackupMaterialiser
from streams.settings import Settings
from streams.shelter_intake import ShelterIntake

if TYPE_CHECKING:
    from aiohttp import web

    from domain.staff_accounts import StaffMember
    from sinks.roster_scope import RosterScope
    from sinks.safety_scope import SafetyScope
    from sinks.shelter_scope import ShelterScope
    from sinks.staff_scope import StaffScope
    from sinks.support_payments import SupportPayments
    from sinks.unaccounted import Unaccounted

# Renderer processes of the certificate worker unless asked otherwise: the cores, at most 4 (each holds a
# font and the seal credentials; more than the cores only adds contention).
MAX_DEFAULT_RENDERERS = 4


class Platform:
    def __init__(self, settings: Settings, *, snapshot_store: ParquetSnapshotStore | None = None,
                 pki: PkiDirectory | None = None, registry: BaseSchemaRegistry | None = None) -> None:
        self.settings = settings
        self._signers: dict[str, RegisterSigner] = {}
        if snapshot_store is not None:
            self.__dict__["snapshot_store"] = snapshot_store
        if pki is not None:
            self.__dict__["pki"] = pki
        if registry is not None:
            self.__dict__["registry"] = registry

    # -- services -----------------------------------------------------------------------------

    @cached_property
    def bootstrap_servers(self) -> str:
        return self.settings.require_bootstrap_servers()

    @cached_property
    def registry(self) -> BaseSchemaRegistry:
        return make_registry(self.settings.schema_registry_url)

    @cached_property
    def snapshot_store(self) -> ParquetSnapshotStore:
        return ParquetSnapshotStore(self.settings.snapshot_dir, self.snapshot_keyring)

    @cached_property
    def snapshot_keyring(self) -> KeyFileKeyring:
        """The snapshot store's encryption keys (infra.snapshot_keys): the platform's, never an analyst's."""
        return KeyFileKeyring(self.settings.snapshot_keys_dir)

    @cached_property
    def pki(self) -> PkiDirectory:
        return PkiDirectory(self.settings.pki_dir, JpkiEndpoints(self.settings.jpki_repository_url))

    @cached_property
    def trust_store(self) -> TrustStore:
        """BCL's registered public keys of the municipalities: whose register changes the backup accepts."""
        return TrustStore(self.settings.trust_store_file)

    @cached_property
    def municipal_keyring(self) -> MunicipalKeyring:
        """The municipalities' private signing keys (the adapter's side of the data dir)."""
        return MunicipalKeyring(self.settings.municipal_keys_dir)

    def register_signer(self, municipality_code: str) -> RegisterSigner:
        """The municipality's adapter signer (streams.adapter.publish). The embedded setup plays both sides:
        a municipality without a key gets one, registered in the trust store as it is created (in
        production the municipality keeps the key and BCL registers the public key: docs/operations.md)."""
        if municipality_code not in self._signers:
            key, created = self.municipal_keyring.load_or_create(municipality_code)
            if created:
                self.trust_store.register(municipality_code, key.public_pem())
            self._signers[municipality_code] = RegisterSigner(key)
        return self._signers[municipality_code]

    def key_pool(self, size: int = DEFAULT_KEY_POOL_SIZE) -> KeyPool:
        """The pool the virtual cards' keys come from (`bcl pki key-pool` makes it)."""
        return KeyPool(self.settings.key_pool_dir, size)

    @cached_property
    def scramble_key_secret(self) -> str:
        """The configured secret, else the data dir's own (made at random on first use, infra.data_dir_keys)."""
        configured = self.settings.scramble_key_secret
        return configured.reveal() if configured is not None else data_dir_secret(self.settings.scramble_key_file)

    def scramble_key(self, municipality_code: str) -> bytes:
        """A municipality's scramble-image key, derived from the platform's secret."""
        return scramble_key(self.scramble_key_secret, municipality_code)

    def analyst_session(self, analyst: str) -> AnalystSession:
        """k-anonymous tables of the municipalities granted to `analyst`; every query audited (sinks.analytics)."""
        return AnalystSession(self.snapshot_store, self.settings.analyst_grants_file, self.settings.audit_file, analyst)

    @cached_property
    def disaster_store(self) -> DisasterStore:
        """Disaster support's durable store and outbox (declarations, later staff entries and applications)."""
        return DisasterStore(self.settings.disaster_store_file,
                             AvroSerde(self.registry, CONTRACTS[topics.DISASTER_EVENTS]))

    @cached_property
    def disaster_ledger(self) -> DisasterLedger:
        """The 被災者台帳 of the declared disasters, in the disaster store, built from the backup."""
        return DisasterLedger(self.disaster_store, self.snapshot_store)

    @cached_property
    def damage_assessment(self) -> DamageAssessment:
        """The dwellings' damage levels and their history, on the disaster store's database and outbox."""
        return DamageAssessment(self.disaster_store,
                                AvroSerde(self.registry, CONTRACTS[topics.DISASTER_ASSESSMENTS]))

    @cached_property
    def mail_outbox(self) -> MailOutbox:
        """The mails disaster support's changes cause, in the disaster store (sent by the mailer)."""
        return MailOutbox(self.disaster_store)

    @cached_property
    def disaster_applications(self) -> DisasterApplications:
        """Online applications, matched against the ledgers (whose tables they read), on the disaster store."""
        return DisasterApplications(self.disaster_ledger.store,
                                    AvroSerde(self.registry, CONTRACTS[topics.DISASTER_APPLICATIONS]),
                                    self.mail_outbox, self.staff_mail_address)

    @cached_property
    def support_payments(self) -> SupportPayments:
        """Each household's support amounts applied for and paid, on the disaster store."""
        from sinks.support_payments import SupportPayments

        return SupportPayments(self.disaster_store, self.disaster_ledger, self.damage_assessment,
                               self.disaster_applications)

    @cached_property
    def shelters(self) -> Shelters:
        """Shelters, their openings and the stays at them, on the disaster store; people found in the ledgers."""
        return Shelters(self.disaster_ledger.store, AvroSerde(self.registry, CONTRACTS[topics.SHELTER_STAYS]),
                        self.shelter_pass_key, AvroSerde(self.registry, CONTRACTS[topics.DLQ]))

    @cached_property
    def shelter_pass_key(self) -> bytes:
        """The HMAC key of the printed shelter registration QR codes (domain.shelter_pass), of the data dir."""
        return bytes.fromhex(data_dir_secret(self.settings.shelter_pass_key_file))

    def shelter_intake(self, clock: Clock = utc_now) -> ShelterIntake:
        """Takes the shelter terminals' batches: card certificates checked like the worker's, then stored."""
        return ShelterIntake(self.shelters, self.card_trust(clock), clock)

    @cached_property
    def evacuation_roster(self) -> EvacuationRoster:
        """The 避難行動要支援者名簿 of the municipalities, in the disaster store; its reads audited."""
        return EvacuationRoster(self.disaster_store, self.settings.audit_file)

    @cached_property
    def evacuation_plans(self) -> EvacuationPlans:
        """The 個別避難計画 of the listed people, beside the roster."""
        return EvacuationPlans(self.evacuation_roster)

    @cached_property
    def unaccounted(self) -> Unaccounted:
        """Who is unaccounted for in a disaster, live from the ledger, the damage levels, the list and the stays,
        and the safety confirmations staff record, on the disaster store."""
        from sinks.unaccounted import Unaccounted

        return Unaccounted(self.disaster_ledger, self.damage_assessment, self.evacuation_roster,
                           self.evacuation_plans, self.shelters, self.settings.audit_file)

    def staff_mail_address(self, municipality_code: str) -> str:
        """The disaster-support staff address of a municipality (Settings.disaster_staff_mail)."""
        return self.settings.disaster_staff_mail.format(municipality_code=municipality_code)

    def card_trust(self, clock: Clock = utc_now) -> CardTrust:
        """The certificate worker's check of a card certificate (chain, validity, purpose; CRL), for applications."""
        return CardTrust(self.pki, clock=clock)

    def application_intake(self, clock: Clock = utc_now) -> ApplicationIntake:
        """Verifies a signed online application and stores it."""
        return ApplicationIntake(self.disaster_applications, self.card_trust(clock), clock)

    def disaster_mailer(self, clock: Clock = utc_now) -> DisasterMailer:
        """Sends the mail outbox through the settings' SMTP server."""
        return DisasterMailer(self.disaster_applications, self.mail_outbox, smtp_host=self.settings.smtp_host,
                              smtp_port=self.settings.smtp_port, sender=self.settings.mail_from, clock=clock)

    @cached_property
    def staff_accounts(self) -> StaffAccounts:
        """Staff accounts and sessions of the staff pages, in the disaster store."""
        return StaffAccounts(self.disaster_store)

    def staff_scope(self, member: StaffMember) -> StaffScope:
        """What one signed-in staff member may read and change: their municipality only, every read audited."""
        from sinks.staff_scope import StaffScope

        return StaffScope(member, self.disaster_ledger, self.damage_assessment, self.disaster_applications,
                          self.settings.audit_file, utc_now, support=self.support_payments)

    def roster_scope(self, member: StaffMember) -> RosterScope:
        """What one signed-in staff member may read and change of the roster and the plans: their municipality's."""
        from sinks.roster_scope import RosterScope

        return RosterScope(member, self.evacuation_roster, self.evacuation_plans, self.settings.audit_file, utc_now)

    def shelter_scope(self, member: StaffMember) -> ShelterScope:
        """What one signed-in staff member may read and change of the shelters: their municipality's."""
        from sinks.shelter_scope import ShelterScope

        return ShelterScope(member, self.shelters, self.settings.audit_file, utc_now)

    def safety_scope(self, member: StaffMember) -> SafetyScope:
        """What one signed-in staff member may read and record of who is unaccounted for: their municipality's."""
        from sinks.safety_scope import SafetyScope

        return SafetyScope(member, self.unaccounted, self.settings.audit_file, utc_now)

    def staff_web(self, **overrides: Any) -> web.Application:
        """The staff pages (streams.staff_web, with streams.roster_web, streams.shelter_web and streams.safety_web),
        over the scopes of the signed-in members."""
        from sinks.ledger_extract import extract_pdf
        from streams.roster_web import roster_routes
        from streams.safety_web import safety_routes
        from streams.shelter_web import shelter_routes
        from streams.staff_web import make_app

        fonts = {"mincho_font": self.settings.mincho_font, "gothic_font": self.settings.gothic_font}
        routes = [*roster_routes(self.roster_scope, clock=utc_now, **fonts), *shelter_routes(self.shelter_scope),
                  *safety_routes(self.safety_scope)]
        return make_app(self.staff_accounts, self.staff_scope,
                        lambda household, member, now: extract_pdf(household, printed_by=member.login, now=now,
                                                                   **fonts), utc_now, routes=routes, **overrides)

    # -- processors ---------------------------------------------------------------------------

    def materialiser(self, **overrides: Any) -> BackupMaterialiser:
        return BackupMaterialiser(self.bootstrap_servers, self.registry, self.snapshot_store,
                                  verifier=SignatureVerifier(self.trust_store), **overrides)

    def billing(self, **overrides: Any) -> BillingProcessor:
        # The billing ledger lives in the snapshot store's folder (sinks.certificate_ledger).
        return BillingProcessor(self.bootstrap_servers, self.registry, self.snapshot_store.root, **overrides)

    def card_lifecycle(self, key_pool: KeyPool | None = None, **overrides: Any) -> CardLifecycleProcessor:
        return CardLifecycleProcessor(self.bootstrap_servers, self.registry, self.snapshot_store, self.pki,
                                      key_pool or self.key_pool(), **overrides)

    def certificate_worker(self, *, options: WorkerOptions | None = None, clock: Clock = utc_now,
                           **overrides: Any) -> CertificateWorker:
        if options is None:
            options = WorkerOptions(render_processes=min(os.cpu_count() or 1, MAX_DEFAULT_RENDERERS))
        ledger, archive = self.settings.worker_ledger_file, self.settings.issuance_dir
        if options.centre is not None:  # each centre's worker has its own ledger and archive (its own disks)
            ledger = self.settings.centre_dir(options.centre) / "ledger.sqlite3"
            archive = self.settings.centre_dir(options.centre) / "issuance"
        resources = WorkerResources(
            store=self.snapshot_store, pki=self.pki, font_path=self.settings.mincho_font,
            scramble_key_secret=self.scramble_key_secret, audit_file=self.settings.audit_file,
            ledger_path=ledger, archive_dir=archive, disaster_store_file=self.settings.disaster_store_file)
        return CertificateWorker(self.bootstrap_servers, self.registry, resources, options=options, clock=clock,
                                 **overrides)

    def disaster_relay(self, **overrides: Any) -> DisasterRelay:
        """Publishes the disaster store's outbox to the cluster."""
        return DisasterRelay(self.bootstrap_servers, self.disaster_store, **overrides)

    def disaster_ledger_processor(self, sink: RegisterStateSink, **overrides: Any) -> DisasterLedgerProcessor:
        """The Faust app keeping the open disasters' ledgers current from bcl.residents, written through `sink`."""
        return DisasterLedgerProcessor(self.bootstrap_servers, self.registry, sink,
                                       data_dir=self.settings.ledger_processor_dir, log_level=self.settings.log_level,
                                       **overrides)

    def evacuation_roster_processor(self, sink: RosterSink | None = None,
                                    **overrides: Any) -> EvacuationRosterProcessor:
        """The Faust app keeping the roster current from bcl.residents and bcl.welfare.status (into `sink`, by
        default the platform's roster)."""
        return EvacuationRosterProcessor(self.bootstrap_servers, self.registry,
                                         self.evacuation_roster if sink is None else sink,
                                         verifier=SignatureVerifier(self.trust_store),
                                         data_dir=self.settings.roster_processor_dir,
                                         log_level=self.settings.log_level, **overrides)

    # -- kiosks -------------------------------------------------------------------------------

    def kiosk_connection(self, *, centres: bool = False, **overrides: Any) -> KioskConnection:
        """centres: send each request to its vendor's centre and fail over to the other (domain.issuing_centres)."""
        if centres:
            overrides.setdefault("centres", CentreAvailability(float(self.settings.centre_fail_after_seconds),
                                                               float(self.settings.centre_probe_after_seconds)))
            overrides.setdefault("vendor_centres", parse_vendor_centres(self.settings.vendor_centres))
        return KioskConnection(self.bootstrap_servers, self.registry, **overrides)

    def card_issuer(self) -> VirtualCardIssuer:
        """Virtual My Number cards of the residents, their certificates issued in the test PKI."""
        return VirtualCardIssuer(self.pki, self.key_pool())
