"""Files holding personal data or keys are 0600 in 0700 folders whatever the umask (issue 8 item 6).

Under the usual umask 022 (a file made without an explicit mode is 0644, a folder 0755), a data dir is
used the way an operator uses it: a register materialised through the embedded cluster, the test PKI
and card keys, the certificate worker issuing one certificate that a kiosk prints, restores and an
analyst's CSV through `bcl`. Then every file and folder that holds personal data or keys is checked."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.japan_time import JST
from infra.cluster_control import ClusterHandle
from infra.private_files import private_folder
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskTerminal, KioskTopics, OutcomeStatus
from kiosk_sim.population import VirtualCardIssuer, profiles_from_backup
from kiosk_sim.transport import InProcessTransport
from schemas.registry import FileSchemaRegistry
from streams.adapter import publish
from streams.certificate_worker import WorkerOptions, WorkerTopics
from streams.cli import main
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.platforms import make_platform

pytestmark = pytest.mark.integration

CODE = "302040"
MORNING = dt.datetime(2026, 11, 20, 10, 0, tzinfo=JST)  # a Friday inside the kiosk service hours


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def bcl(data_dir: Path, *args: str) -> None:
    try:
        main(["--data-dir", str(data_dir), *args])
    except SystemExit as exc:
        assert not exc.code, f"bcl {' '.join(args)} exited with {exc.code}"


@dataclass
class Used:
    platform: Platform
    outside: Path  # a folder of the user's, outside the data dir (where --out and --csv wrote)


@pytest.fixture(scope="module")
def used(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Used]:
    previous = os.umask(0o022)
    try:
        root = tmp_path_factory.mktemp("private-files")
        platform = make_platform(root / "data", cluster)
        settings = platform.settings

        def private(prefix: str, partitions: int = 3) -> str:
            name = f"private-files.{prefix}.{root.name}"
            cluster.create_topic(name, partitions, 3)
            return name

        diffs, residents_topic, dlq = private("diffs"), private("residents"), private("dlq", 1)
        simulator = RegisterSimulator(load_reference_data(), CODE, population=60, seed=5,
                                      start=MORNING - dt.timedelta(days=5), font_path=settings.mincho_font)
        publish(simulator.full_load(), cluster.bootstrap_servers, platform.registry, platform.register_signer,
                topic=diffs)
        platform.materialiser(group_id=f"private-files-{root.name}",
                              topic_names=MaterialiserTopics(diffs=diffs, residents=residents_topic, dlq=dlq)
                              ).run(until_caught_up=True, idle_seconds=0.5)

        start = time.monotonic()

        def clock() -> dt.datetime:
            now = MORNING.astimezone(dt.UTC) + dt.timedelta(seconds=time.monotonic() - start)
            return now.replace(microsecond=now.microsecond // 1000 * 1000)

        platform.pki.initialise(clock())
        residents = VirtualCardIssuer(platform.pki, platform.key_pool(2)).population(
            profiles_from_backup(platform.snapshot_store, CODE, settings.audit_file), clock())
        topics = KioskTopics(requests=private("requests"), responses=private("responses"))
        worker = platform.certificate_worker(
            topic_names=WorkerTopics(requests=topics.requests, responses=topics.responses, issued=private("issued"),
                                     residents=residents_topic, revocations=private("revocations"), dlq=dlq),
            group_id=f"private-files-worker-{root.name}", options=WorkerOptions(render_processes=0), clock=clock)
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
        thread.start()
        assert ready.wait(60), "the certificate worker did not get ready"
        try:
            with KioskConnection(cluster.bootstrap_servers, FileSchemaRegistry(), topics=topics,
                                 response_timeout=30) as connection, InProcessTransport(residents[0].card) as card:
                kiosk = Kiosk(KioskTerminal("lawson-302040-00001", "lawson", "WEST", CODE), connection, clock=clock)
                outcome = kiosk.issue(card, residents[0].pin, CertificateChoice(CODE, "RESIDENT_RECORD"),
                                      print_to=settings.kiosk_dir / "copy.pdf")
            assert outcome.status is OutcomeStatus.ISSUED, (outcome.reason_code, outcome.message)

            outside = root / "outside"
            outside.mkdir()
            as_of = clock().isoformat()
            bcl(settings.data_dir, "backup", "restore", "--municipality", CODE, "--as-of", as_of, "--format", "csv")
            bcl(settings.data_dir, "backup", "restore", "--municipality", CODE, "--as-of", as_of,
                "--out", str(outside / "register.parquet"))
            bcl(settings.data_dir, "analysts", "grant", "sato", "--municipality", CODE)
            bcl(settings.data_dir, "query", "--analyst", "sato", "SELECT * FROM residents",
                "--csv", str(outside / "residents.csv"))
            yield Used(platform, outside)  # the worker still runs: its ledger's -wal and -shm files exist
        finally:
            stop.set()
            thread.join(30)
    finally:
        os.umask(previous)


def test_every_file_with_personal_data_or_keys_is_0600_in_0700_folders(used: Used) -> None:
    settings = used.platform.settings
    trees = {
        "snapshots (the register's history)": settings.snapshot_dir,
        "restores": settings.restores_dir,
        "issuance archive": settings.issuance_dir,
        "worker ledger": settings.worker_ledger_file.parent,
        "printed certificates": settings.kiosk_dir,
        "audit log": settings.audit_file.parent,
        "data dir keys": settings.keys_dir,
        "PKI (CA, seal and card keys)": settings.pki_dir,
    }
    # Public by design: certificates and the CRL (served by `bcl pki ocsp-serve`); their folders are private.
    public = {p for p in settings.pki_dir.rglob("*") if p.name.endswith(".pem") and not p.name.endswith(".key.pem")
              and "key-pool" not in p.parts} | set(settings.pki_dir.rglob("*.crl"))
    wrong = []
    for what, tree in trees.items():
        files = [p for p in tree.rglob("*") if p.is_file()]
        assert files, f"nothing was written under {what} ({tree})"
        for path in [tree, *tree.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o644 if path in public else 0o600
            if mode(path) != expected:
                wrong.append(f"{what}: {path.relative_to(settings.data_dir)} is {mode(path):04o}, not {expected:04o}")
    assert not wrong, "\n".join(wrong)
    ledger = settings.worker_ledger_file
    assert {p.name for p in ledger.parent.iterdir()} >= {ledger.name, f"{ledger.name}-wal"}
    assert any(settings.restores_dir.glob("*.csv")) and (settings.kiosk_dir / "copy.pdf").is_file()
    assert any(settings.pki_dir.rglob("*.key.pem")) and any((settings.pki_dir / "key-pool").glob("*.pem"))


def test_outputs_outside_the_data_dir_are_0600_and_the_users_folder_is_left_alone(used: Used) -> None:
    assert mode(used.outside / "register.parquet") == 0o600
    assert mode(used.outside / "residents.csv") == 0o600
    assert mode(used.outside) == 0o755, "a folder the user made is theirs: not changed"
    assert not [p for p in used.outside.iterdir() if p.name.startswith(".")], "no staging folder left behind"


@pytest.mark.usefixtures("umask_022")
def test_a_folder_made_wider_before_is_tightened_when_written_to(tmp_path: Path) -> None:
    old = tmp_path / "snapshots"
    old.mkdir()
    assert mode(old) == 0o755
    private_folder(old)
    assert mode(old) == 0o700
