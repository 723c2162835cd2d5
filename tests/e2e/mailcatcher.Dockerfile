# The e2e mail catcher (tests/e2e/mailcatcher.py): SMTP on 1025, the received messages over HTTP on 8025.
# Built from the shop's base image (Debian bookworm; scripts/containers.py) like every other container.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/catcher/bin:$PATH
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/catcher && pip install aiosmtpd==1.4.6 \
 && useradd --create-home --uid 10001 shop
COPY tests/e2e/mailcatcher.py /app/mailcatcher.py
USER shop
EXPOSE 1025 8025
HEALTHCHECK --interval=5s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8025/healthz', timeout=2)"
CMD ["python", "/app/mailcatcher.py", "--smtp-port", "1025", "--http-port", "8025"]
