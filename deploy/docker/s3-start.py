"""moto's S3 server on every address, with the shop's bucket made before it reports healthy.

Catalog would make a missing bucket itself, but only when it starts: made here, the bucket is
there whichever starts first, and the health check (the bucket answers) means "ready for images".
"""

from __future__ import annotations

import os
import signal
import threading

import boto3
from moto.server import ThreadedMotoServer

port = int(os.environ.get("S3_PORT", "9000"))
bucket = os.environ.get("S3_BUCKET", "shop-media")
server = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)
server.start()
boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    region_name="us-east-1",
    aws_access_key_id="shop",  # moto takes any credentials
    aws_secret_access_key="shop",
).create_bucket(Bucket=bucket)
print(f"s3: moto on :{port}, bucket {bucket} (objects in memory)", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
while not stop.wait(0.5):  # a wait without timeout is not woken by the signal handler
    pass
os._exit(0)  # the objects live in memory only: nothing to flush, and werkzeug's shutdown can hang
