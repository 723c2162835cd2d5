from libs.common.db import run_migrations_online
from services.pricing.models import Base

run_migrations_online(Base.metadata)
