# The commands the README shows. PYTHON is the interpreter of the active venv; .ci/run passes its own.
PYTHON ?= python
# pytest exits 5 when it collects nothing: a failure unless ALLOW_EMPTY=1 says an empty suite is expected
ALLOW_EMPTY ?= 0

.PHONY: install dev up infra test lint

install:
	$(PYTHON) -m pip install -e '.[dev]'

# the whole shop in one process on embedded PostgreSQL and Redis (data in .data/)
dev:
	$(PYTHON) -m libs.devserver

# every part as its own process against real PostgreSQL, Redis and RabbitMQ
up:
	$(PYTHON) scripts/up.py

infra:
	$(PYTHON) scripts/infra.py ensure --profile dev

test:
	$(PYTHON) scripts/infra.py ensure --profile test
	set -a; . ./.test-infra.env; set +a; \
	$(PYTHON) -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ] && [ "$(ALLOW_EMPTY)" = 1 ]; then echo "make test: no tests collected (ALLOW_EMPTY=1)"; exit 0; fi; \
	exit $$status

lint:
	$(PYTHON) -m ruff check .
	-$(PYTHON) -m mypy libs
