"""The composition root builds every processor from the settings, and the settings keep their secrets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from domain.errors import BclError
from infra.cluster_control import ClusterHandle
from streams.platform import Platform
from streams.settings import Secret, load_settings
from tests.platforms import make_platform


def test_secrets_never_show_in_a_repr_or_a_log_line() -> None:
    value = "kept-out-of-logs-8f3a91c2d7e64b05a9"
    settings = load_settings(environ={"BCL_SCRAMBLE_KEY_SECRET": value})
    assert isinstance(settings.scramble_key_secret, Secret)
    assert settings.scramble_key_secret.reveal() == value
    shown = repr(settings) + str(settings) + f"{settings.scramble_key_secret}"
    assert value not in shown


def test_paths_all_derive_from_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path}, environ={})
    derived = [settings.pki_dir, settings.snapshot_dir, settings.audit_file, settings.key_pool_dir,
               settings.scramble_key_file, settings.analyst_grants_file,
               settings.worker_ledger_file, settings.issuance_dir, settings.restores_dir, settings.kiosk_dir,
               settings.billing_dir, settings.statistics_dir, settings.bootstrap_file, settings.pcscd_log]
    assert all(tmp_path in p.parents for p in derived)


def test_services_need_no_cluster_until_a_processor_is_built(tmp_path: Path) -> None:
    platform = Platform(load_settings({"data_dir": tmp_path}, environ={}))
    assert not platform.snapshot_store.has_history()
    assert platform.pki.path == tmp_path / "pki"
    assert platform.scramble_key("302066") != platform.scramble_key("045811")
    with pytest.raises(BclError, match="bcl cluster up"):
        platform.materialiser()


def test_every_processor_is_built_from_the_settings(cluster: ClusterHandle, tmp_path: Path) -> None:
    platform = make_platform(tmp_path, cluster)
    platform.pki.initialise(dt.datetime.now(dt.UTC))  # the worker trusts the PKI's root from the start
    assert platform.materialiser().topics.diffs == "bcl.register.diffs"
    assert platform.billing().topics.issued == "bcl.certificates.issued"
    assert platform.card_lifecycle().topics.revocations == "bcl.jpki.revocations"
    worker = platform.certificate_worker()
    assert worker.bootstrap_servers == cluster.bootstrap_servers and worker.topics.requests == "bcl.kiosk.requests"
