"""Shared fixtures. Integration fixtures for the embedded cluster live in tests/integration_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings

pytest_plugins = ["tests.integration_fixtures"]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return Settings().reference_data_dir
