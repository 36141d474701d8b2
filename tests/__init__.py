"""The test suite (a package so that tests/conftest.py can load tests.integration_fixtures)."""
