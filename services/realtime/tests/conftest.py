"""Fixtures of these tests live in realtime_testkit (a unique module name, importable by the tests)."""

from realtime_testkit import *  # noqa: F403
