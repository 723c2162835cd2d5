"""Test support shared by every service: real infrastructure, tokens, running apps.

Loaded as a pytest plugin (``-p libs.common.testing.plugin``); the helpers here are
imported by tests directly.
"""

from libs.common.testing.apps import running_app, serve_app
from libs.common.testing.helpers import assert_problem, dead_lettered, eventually
from libs.common.testing.infra import Infra, settings_for
from libs.common.testing.keys import TestKeys

__all__ = [
    "Infra",
    "TestKeys",
    "assert_problem",
    "dead_lettered",
    "eventually",
    "running_app",
    "serve_app",
    "settings_for",
]
