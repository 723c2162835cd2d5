from libs.common.db import run_migrations_online
from services.notifications.models import Base

run_migrations_online(Base.metadata)
