"""``python -m services.catalog [serve|migrate|seed --products N]``."""

from __future__ import annotations

import sys

from libs.common.runner import main
from services.catalog import seed
from services.catalog.app import MIGRATIONS, create_app
from services.catalog.settings import get_settings

if __name__ == "__main__":
    main(
        sys.argv[1:],
        settings=get_settings(),
        app_factory=create_app,
        migrations=MIGRATIONS,
        commands={"seed": (seed.configure, seed.run)},
    )
