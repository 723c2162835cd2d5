"""``python -m services.realtime``: serve the Socket.IO service."""

from libs.common.runner import main
from services.realtime.app import create_app
from services.realtime.settings import get_settings

if __name__ == "__main__":
    main(None, settings=get_settings(), app_factory=create_app)
