"""Tests build what they run through the composition root (streams.platform), as the CLI does: settings
made the one supported way (load_settings), with a data dir of the test's own and, for integration tests,
the session cluster. The environment is left out, so a developer's BCL_* variables never reach a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from certgen.pki_directory import PkiDirectory
from infra.cluster_control import ClusterHandle
from sinks.snapshot_store import ParquetSnapshotStore
from streams.platform import Platform
from streams.settings import Settings, load_settings


def settings_for(data_dir: Path, cluster: ClusterHandle | None = None, **overrides: Any) -> Settings:
    values = {"data_dir": data_dir, "bootstrap_servers": cluster.bootstrap_servers if cluster else None, **overrides}
    return load_settings(values, environ={})


def make_platform(data_dir: Path, cluster: ClusterHandle | None = None, *, pki: PkiDirectory | None = None,
                  snapshot_store: ParquetSnapshotStore | None = None, **overrides: Any) -> Platform:
    """A platform on `data_dir`; `pki` and `snapshot_store` when several platforms of a test share them."""
    return Platform(settings_for(data_dir, cluster, **overrides), pki=pki, snapshot_store=snapshot_store)


