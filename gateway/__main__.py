"""``python -m gateway``: serve the gateway with uvicorn."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.parse_args(argv)
    settings = get_settings()
    # unlike the services, the gateway is the edge: X-Forwarded-For is only believed from
    # the proxies named in FORWARDED_ALLOW_IPS (none by default)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        timeout_keep_alive=75,
    )  # longer than browsers and mobile clients keep idle connections


if __name__ == "__main__":
    main(sys.argv[1:])
