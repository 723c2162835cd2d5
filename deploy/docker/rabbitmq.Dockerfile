# RabbitMQ from Debian's packages (see postgres.Dockerfile for why). RABBITMQ_DEFAULT_USER and
# RABBITMQ_DEFAULT_PASS name the account the parts use, as with the upstream image.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/rabbitmq-start.sh /usr/local/bin/rabbitmq-start
RUN chmod 755 /usr/local/bin/rabbitmq-start
EXPOSE 5672
HEALTHCHECK --interval=5s --timeout=10s --retries=30 --start-period=20s CMD ["rabbitmq-diagnostics", "-q", "ping"]
CMD ["rabbitmq-start"]
