"""Fixtures of these tests live in pricing_testkit (a unique module name, importable by the tests)."""

from pricing_testkit import *  # noqa: F403
