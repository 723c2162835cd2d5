"""``python -m services.cart [serve|migrate]``."""

from __future__ import annotations

from libs.common.runner import main
from services.cart.app import MIGRATIONS, create_app
from services.cart.settings import get_settings

if __name__ == "__main__":
    main(None, settings=get_settings(), app_factory=create_app, migrations=MIGRATIONS)
