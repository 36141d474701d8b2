"""Shared fixtures. Integration fixtures for the embedded cluster live in tests/integration_fixtures.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.integration_fixtures"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a file made without an explicit mode is 0644 and a folder 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)
