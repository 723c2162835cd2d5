"""Fixtures of these tests live in cart_testkit (a unique module name, importable by the tests)."""

from cart_testkit import *  # noqa: F403
