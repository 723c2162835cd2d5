# PostgreSQL from Debian's packages, for docker-compose.yml: built from the same base as every
# part (SHOP_BASE_IMAGE: Debian bookworm, pulled or made locally by scripts/containers.py), so
# the whole shop runs with no image registry. POSTGRES_PASSWORD sets the postgres user's password
# when the data directory is first made.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY deploy/docker/postgres-start.sh /usr/local/bin/postgres-start
RUN chmod 755 /usr/local/bin/postgres-start
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --retries=20 CMD ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
CMD ["postgres-start"]
