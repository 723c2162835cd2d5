"""``python -m services.pricing [serve|migrate|seed]``."""

from __future__ import annotations

import sys

from libs.common.runner import main
from services.pricing import seed
from services.pricing.app import MIGRATIONS, create_app
from services.pricing.settings import get_settings

if __name__ == "__main__":
    main(
        sys.argv[1:],
        settings=get_settings(),
        app_factory=create_app,
        migrations=MIGRATIONS,
        commands={"seed": (seed.configure, seed.run)},
    )
