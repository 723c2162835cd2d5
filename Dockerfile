# One image recipe for every part of the shop; the part is a build argument:
#   docker build --build-arg PART=catalog -t shop-catalog .
# PART is a name from libs/common/parts.py, which gives the module to run and its port.
# Only what running needs is installed (no `dev` or `test` extra: no embedded servers, no test tools).

# the admin console's socket.io-client comes from npm at build time (pinned in its package.json);
# only realtime serves it, the file is small enough to ride along in every image
FROM node:20-slim AS console
WORKDIR /console
COPY services/realtime/console/package.json ./
RUN npm install --no-audit --no-fund --package-lock=false

FROM python:3.11-slim
ARG PART
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOST=0.0.0.0 SHOP_PART=${PART}
WORKDIR /app
RUN useradd --create-home --uid 10001 shop
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
COPY gateway ./gateway
COPY --from=console /console/node_modules/socket.io-client/dist/socket.io.min.js* ./services/realtime/console/node_modules/socket.io-client/dist/
# the part's module and port, from the registry; an unknown or missing PART fails the build here
RUN pip install . \
 && python -c "import sys; from libs.common.parts import part; p = part(sys.argv[1]); print(f'SHOP_MODULE={p.module}\nSHOP_PORT={p.port}')" "${PART:?build with --build-arg PART=<name of libs/common/parts.py>}" > /app/part.env
USER shop
# PORT, when set, wins over the registry's port (as for `python -m <module>` anywhere)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
  CMD ["sh", "-c", ". /app/part.env && exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \"http://127.0.0.1:${PORT:-$SHOP_PORT}/healthz\""]
CMD ["sh", "-c", ". /app/part.env && exec python -m \"$SHOP_MODULE\""]
