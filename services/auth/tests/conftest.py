"""Fixtures of these tests live in auth_testkit (a unique module name, importable by the tests)."""

from auth_testkit import *  # noqa: F403
