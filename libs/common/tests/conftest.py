"""Fixtures of these tests live in common_testkit (a unique module name, importable by the tests)."""

from common_testkit import *  # noqa: F403
