"""``python -m services.<name> [serve|migrate|...]``: the same CLI for every part."""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from libs.common.config import CommonSettings
from libs.common.db import migrate

SettingsT = TypeVar("SettingsT", bound=CommonSettings)
Command = Callable[[SettingsT, argparse.Namespace], Any]


def serve(app: FastAPI, settings: CommonSettings) -> None:
    """Run the app with uvicorn on the settings' host and port (uvloop + httptools).

    With ``gc_young_threshold`` set, what was made at start (modules, the app, settings) is
    moved out of the collector's sight and young collections come less often: their full
    passes over long-lived objects were what made realtime's broadcasts to 1,000 sockets
    cost 60-120 CPU-ms and spike (bench/fanout_paths.py).
    """
    if settings.gc_young_threshold is not None:
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.gc_young_threshold, older, oldest)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
        proxy_headers=False,
    )  # libs.common.forwarding decides who forwarded


def main(
    argv: Sequence[str] | None,
    *,
    settings: SettingsT,
    app_factory: Callable[[SettingsT], FastAPI],
    migrations: Path | None = None,
    commands: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command[SettingsT]]] | None = None,
) -> None:
    """Parse the command line and run ``serve`` (default), ``migrate`` or a service command."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{settings.service_name}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP server (default)")
    if migrations is not None:
        sub.add_parser("migrate", help="apply database migrations (idempotent)")
    for name, (configure, _) in (commands or {}).items():
        configure(sub.add_parser(name))
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        serve(app_factory(settings), settings)
    elif command == "migrate":
        assert migrations is not None
        asyncio.run(migrate(settings.db_url, migrations))
        print(f"{settings.db_name}: migrated to head")
    else:
        _, run = (commands or {})[command]
        result = run(settings, args)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
