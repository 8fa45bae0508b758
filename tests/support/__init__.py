"""Helpers shared by the test suites (real servers for the integration tests live in ``servers``)."""
