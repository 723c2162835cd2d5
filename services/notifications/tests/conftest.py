"""Fixtures of these tests live in notifications_testkit (a unique module name, importable by the tests)."""

from notifications_testkit import *  # noqa: F403
