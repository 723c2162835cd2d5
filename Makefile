# The commands the README shows. They run in the project's own venv (.venv), made and kept in
# step with pyproject.toml on first use, so a fresh clone needs nothing but Python 3.11+ and make.
# PYTHON=<interpreter> uses another one that already has the dependencies (nothing installed then).
VENV := .venv
PYTHON ?= $(VENV)/bin/python
# what running needs (the `dev` extra: embedded PostgreSQL and Redis), and what checking needs on top
# (the `test` extra: pytest, linters, browsers' driver...). make dev/up install only the first.
DEPS := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed-dev,)
TEST_DEPS := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed,)
# pytest exits 5 when it collects nothing: a failure unless ALLOW_EMPTY=1 says an empty suite is expected
ALLOW_EMPTY ?= 0

.PHONY: install dev up infra test lint console asyncapi e2e-compose client-check

install: $(VENV)/.installed

# pip's own progress lines, not -q: a first install takes a while and should be seen working
$(VENV)/.installed-dev: pyproject.toml
	@test -x $(VENV)/bin/python || python3 scripts/make_venv.py $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on -e '.[dev]'
	touch $@

$(VENV)/.installed: pyproject.toml
	@test -x $(VENV)/bin/python || python3 scripts/make_venv.py $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on -e '.[test]'
	touch $@ $(VENV)/.installed-dev

# the admin console's socket.io-client (pinned in its package.json) from npm; never kept in the repo.
# npm stamps files with an old date, hence the touch: the client is rebuilt only when package.json changes
CONSOLE_DIR := services/realtime/console
CONSOLE_CLIENT := $(CONSOLE_DIR)/node_modules/socket.io-client/dist/socket.io.min.js
console: $(CONSOLE_CLIENT)

$(CONSOLE_CLIENT): $(CONSOLE_DIR)/package.json
	@command -v npm >/dev/null || { echo "make console: npm is needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	cd $(CONSOLE_DIR) && npm install --no-audit --no-fund --package-lock=false
	touch $@

# TypeScript types generated from the gateway's merged OpenAPI document (openapi-typescript, pinned in
# clients/typescript/package.json; npm, never committed) and a frontend-style script type-checked against
# them: renaming a field or changing a problem's shape fails the build
CLIENT_DIR := clients/typescript
CLIENT_TOOLS := $(CLIENT_DIR)/node_modules/.bin/tsc
$(CLIENT_TOOLS): $(CLIENT_DIR)/package.json
	@command -v npm >/dev/null || { echo "make client-check: npm is needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	cd $(CLIENT_DIR) && npm install --no-audit --no-fund --package-lock=false
	touch $@

client-check: $(DEPS) $(CLIENT_TOOLS)
	@mkdir -p $(CLIENT_DIR)/build
	$(PYTHON) -m services.openapi > $(CLIENT_DIR)/build/shop-openapi.json
	cd $(CLIENT_DIR) && node_modules/.bin/openapi-typescript build/shop-openapi.json -o build/shop-api.d.ts --silent \
		&& node_modules/.bin/tsc -p . && echo "make client-check: frontend.ts type-checks against the generated client"

# the whole shop in one process on embedded PostgreSQL and Redis (data in .data/); ARGS="--port-offset 100" etc.
dev: $(DEPS)
	@$(MAKE) --no-print-directory console || echo "make dev: the admin console's client was not built (it needs npm); everything else runs" >&2
	$(PYTHON) -m devserver $(ARGS)

# every part as its own process against real PostgreSQL, Redis and RabbitMQ; REPLICAS=2 runs two
# processes of every service (one gateway spreading over them; scripts/up.py says why)
REPLICAS ?= 1
up: $(DEPS)
	@$(MAKE) --no-print-directory console || echo "make up: the admin console's client was not built (it needs npm); everything else runs" >&2
	$(PYTHON) scripts/up.py --replicas $(REPLICAS)

infra: $(DEPS)
	$(PYTHON) scripts/infra.py ensure --profile dev

test: $(TEST_DEPS) console k8s-tools client-check
	$(PYTHON) scripts/ensure_browser.py
	$(PYTHON) scripts/infra.py ensure --profile test
	set -a; . ./.test-infra.env; set +a; \
	$(PYTHON) -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ] && [ "$(ALLOW_EMPTY)" = 1 ]; then echo "make test: no tests collected (ALLOW_EMPTY=1)"; exit 0; fi; \
	exit $$status

# tests/security alone, fuzzing at length: FUZZ_EXAMPLES cases per operation and role, a fresh seed each run
# (a failure prints it; FUZZ_SEED=<n> replays it). make test runs the same suite with 10 cases and a fixed seed
FUZZ_EXAMPLES ?= 200
.PHONY: fuzz
fuzz: $(TEST_DEPS)
	$(PYTHON) scripts/infra.py ensure --profile test
	set -a; . ./.test-infra.env; set +a; \
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 $(PYTHON) -m pytest -q tests/security

# the AsyncAPI document of every event, from the models (the gateway serves it; a test checks it is current)
asyncapi:
	$(PYTHON) -m services.asyncapi > gateway/asyncapi.json.tmp && mv gateway/asyncapi.json.tmp gateway/asyncapi.json

# tests/e2e against the containers of docker-compose.yml (+ docker-compose.e2e.yml), always torn down after.
# scripts/containers.py brings what is missing: the engine (Debian's docker.io, as root), a compose
# client (Compose v2 if the CLI has it, else Debian's docker-compose 1.29) and the Debian base image
# (pulled, or made with debootstrap when no registry answers). SHOP_COMPOSE_CMD overrides the client.
E2E_NET ?= 172.29
E2E_PROJECT ?= shop-e2e
# E2E_GATEWAY_PORT / E2E_MAIL_PORT: the loopback ports published; unset, free ones are picked right
# before the containers start (scripts/containers.py free-port: below the ephemeral range)
DOCKER ?= docker
E2E_ADMIN_EMAIL ?= admin@e2e.shop.test
E2E_ADMIN_PASSWORD ?= Admin-pass-e2e-1
e2e-compose: $(TEST_DEPS)
	found=$$(DOCKER='$(DOCKER)' python3 scripts/containers.py env) && eval "$$found" && \
	compose="$$SHOP_COMPOSE_CMD -p $(E2E_PROJECT) -f docker-compose.yml -f docker-compose.e2e.yml" && \
	export SHOP_NET=$(E2E_NET) POSTGRES_PUBLISH=127.0.0.1: REDIS_PUBLISH=127.0.0.1: RABBITMQ_PUBLISH=127.0.0.1: \
		SHOP_ADMIN_EMAIL='$(E2E_ADMIN_EMAIL)' SHOP_ADMIN_PASSWORD='$(E2E_ADMIN_PASSWORD)' GATEWAY_PORT=0 && \
	trap "$$compose down -v --remove-orphans" EXIT && trap 'exit 130' INT TERM && \
	$$compose build && \
	gateway_port=$${E2E_GATEWAY_PORT:-$$(python3 scripts/containers.py free-port)} && \
	mail_port=$${E2E_MAIL_PORT:-$$(python3 scripts/containers.py free-port)} && \
	export GATEWAY_PORT=127.0.0.1:$$gateway_port MAILCATCHER_PUBLISH=127.0.0.1:$$mail_port && \
	$$compose up -d && DOCKER='$(DOCKER)' python3 scripts/containers.py wait $(E2E_PROJECT) && \
	SHOP_GATEWAY_URL=http://127.0.0.1:$$gateway_port SHOP_MAIL_URL=http://127.0.0.1:$$mail_port \
		SHOP_PART_CONTROL=compose SHOP_COMPOSE="$$compose" $(PYTHON) -m pytest -q -rs tests/e2e

# the previous release's journeys with one part at that release and the rest at HEAD, each part in
# turn (scripts/e2e_mixed.py); BASE=<tag or commit> picks the release (default: the nearest v* tag)
BASE ?=
.PHONY: e2e-mixed
e2e-mixed: $(TEST_DEPS)
	$(PYTHON) scripts/infra.py ensure --profile test
	set -a; . ./.test-infra.env; set +a; \
	$(PYTHON) scripts/e2e_mixed.py $(if $(BASE),--base $(BASE),)

# checkov and kubernetes-validate in a venv of their own (tests/deploy runs them on deploy/k8s)
K8S_TOOLS := .tools/k8s
.PHONY: k8s-tools
k8s-tools: $(K8S_TOOLS)/.installed

$(K8S_TOOLS)/.installed: deploy/k8s/tools.txt
	@test -x $(K8S_TOOLS)/bin/python || python3 -m venv $(K8S_TOOLS)
	$(K8S_TOOLS)/bin/python -m pip install -r deploy/k8s/tools.txt
	touch $@

# one definition of "lint", for developers and CI (.ci/run): style and bugs, types, and the import
# boundaries of DESIGN.md section 1 (the contracts in pyproject.toml's [tool.importlinter])
lint: $(TEST_DEPS)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy libs services gateway tests devserver scripts
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports_command as lint; sys.exit(lint())" --no-cache

# the load a shop owner would run (bench/load.py, bench/locustfile.py): browsing, carts, checkouts and
# admins on sockets, stepped up for LOAD_SECONDS (then it stops) against a shop it starts on loopback,
# or the running one at LOAD_URL (LOAD_ADMIN_EMAIL/LOAD_ADMIN_PASSWORD put admins on sockets there);
# prints the highest rate held with p95 < 200 ms and 0 errors. LOAD_ARGS='--json load.json' keeps it
LOAD_URL ?=
LOAD_SECONDS ?= 240
LOAD_ARGS ?=
.PHONY: load
load: $(TEST_DEPS)
	$(if $(LOAD_URL),,$(PYTHON) scripts/infra.py ensure --profile test)
	$(if $(LOAD_URL),,set -a; . ./.test-infra.env; set +a;) \
	LOAD_URL='$(LOAD_URL)' $(PYTHON) bench/load.py --seconds $(LOAD_SECONDS) $(LOAD_ARGS)

# every part as its own process on this run's PostgreSQL, Redis and RabbitMQ, measured through the
# gateway, printed as one table (bench/stack.py, a few minutes); BENCH_ARGS='--json bench.json' keeps it
BENCH_ARGS ?=
.PHONY: bench
bench: $(TEST_DEPS)
	$(PYTHON) scripts/infra.py ensure --profile test
	set -a; . ./.test-infra.env; set +a; \
	$(PYTHON) bench/stack.py $(BENCH_ARGS)
