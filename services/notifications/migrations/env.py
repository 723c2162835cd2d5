from libs.common.db import run_migrations_online
from services.notifications import webhook_models  # noqa: F401  (its tables join Base.metadata)
from services.notifications.models import Base

run_migrations_online(Base.metadata)
