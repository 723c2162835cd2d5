# S3-compatible storage for product images in the compose stack: moto's server mode.
# Debian's packages carry no S3 server (no MinIO, no moto; radosgw needs a whole Ceph cluster),
# so this is moto[server] from PyPI, the pin the image tests run against, on Debian's Python.
# Catalog serves the images through the gateway, so this is never published.
# It keeps objects in memory: images are gone when this container stops, while the products that
# name them stay in PostgreSQL. A development stack only: production sets MEDIA_S3_* to real storage.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/s3 \
 && /opt/s3/bin/pip install --no-cache-dir "moto[server]==5.2.5" && useradd --uid 10002 s3
COPY deploy/docker/s3-start.py /opt/s3/start.py
USER s3
ENV S3_PORT=9000 S3_BUCKET=shop-media
EXPOSE 9000
# healthy once the bucket exists: catalog starts after that
HEALTHCHECK --interval=5s --timeout=3s --retries=20 \
  CMD ["/opt/s3/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['S3_PORT']}/{os.environ['S3_BUCKET']}\", timeout=2)"]
CMD ["/opt/s3/bin/python", "/opt/s3/start.py"]
