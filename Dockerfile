# One image recipe for every part of the shop; the part is a build argument:
#   docker build --build-arg PART=catalog -t shop-catalog .
# PART is a name from libs/common/parts.py, which gives the module to run and its port.
# Only what running needs is installed (no `dev` or `test` extra: no embedded servers, no test tools).
#
# Every stage starts from BASE_IMAGE, Debian bookworm: pulled where a registry answers, made
# locally with debootstrap where none does (scripts/containers.py, which make e2e-compose runs).
# Python and Node come from Debian's packages (Python 3.11, the version the project supports),
# so building needs a Debian mirror, PyPI and npm, and no image registry.
ARG BASE_IMAGE=debian:bookworm-slim

# the admin console's socket.io-client comes from npm at build time (pinned in its package.json);
# only realtime serves it, the file is small enough to ride along in every image
FROM ${BASE_IMAGE} AS console
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /console
COPY services/realtime/console/package.json ./
RUN npm install --omit=dev --no-audit --no-fund --package-lock=false

FROM ${BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/shop && useradd --create-home --uid 10001 shop
ENV PATH=/opt/shop/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
COPY gateway ./gateway
COPY --from=console /console/node_modules/socket.io-client/dist/socket.io.min.js* ./services/realtime/console/node_modules/socket.io-client/dist/
RUN pip install .
# PART only from here on, so every part's image shares the layers above (one pip install for all)
ARG PART
ENV SHOP_PART=${PART}
# the part's module and port, from the registry; an unknown or missing PART fails the build here
RUN python -c "import sys; from libs.common.parts import part; p = part(sys.argv[1]); print(f'SHOP_MODULE={p.module}\nSHOP_PORT={p.port}')" "${PART:?build with --build-arg PART=<name of libs/common/parts.py>}" > /app/part.env
USER shop
# PORT, when set, wins over the registry's port (as for `python -m <module>` anywhere)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
  CMD ["sh", "-c", ". /app/part.env && exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \"http://127.0.0.1:${PORT:-$SHOP_PORT}/healthz\""]
CMD ["sh", "-c", ". /app/part.env && exec python -m \"$SHOP_MODULE\""]
