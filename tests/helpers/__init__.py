"""Shared test helpers and fakes (imported by tests; conftest.py holds fixtures only)."""
