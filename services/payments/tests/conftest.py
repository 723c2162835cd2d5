"""Fixtures of these tests live in payments_testkit (a unique module name, importable by the tests)."""

from payments_testkit import *  # noqa: F403
