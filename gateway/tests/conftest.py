"""Fixtures of these tests live in gateway_testkit (a unique module name, importable by the tests)."""

from gateway_testkit import *  # noqa: F403
