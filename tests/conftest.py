"""Shared fixtures. Integration fixtures for the embedded cluster live in tests/integration_fixtures.py."""

from __future__ import annotations

pytest_plugins = ["tests.integration_fixtures"]
