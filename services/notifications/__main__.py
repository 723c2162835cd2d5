"""``python -m services.notifications [serve|migrate]``."""

from __future__ import annotations

import sys

from libs.common.runner import main
from services.notifications.app import MIGRATIONS, create_app
from services.notifications.settings import get_settings

if __name__ == "__main__":
    main(sys.argv[1:], settings=get_settings(), app_factory=create_app, migrations=MIGRATIONS)
