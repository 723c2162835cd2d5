"""``python -m services.pricing [serve|migrate]``."""

from __future__ import annotations

from libs.common.runner import main
from services.pricing.app import MIGRATIONS, create_app
from services.pricing.settings import get_settings

if __name__ == "__main__":
    main(None, settings=get_settings(), app_factory=create_app,  # type: ignore[arg-type]
         migrations=MIGRATIONS)
