"""The official JavaScript client (socket.io-client v4 from npm, run by node) works with us."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from realtime_testkit import event, publish, realtime_with_standins

from libs.common.testing import Infra, TestKeys

JS = Path(__file__).parent / "js"


def _install_client() -> None:
    if (JS / "node_modules" / "socket.io-client").is_dir():
        return
    assert shutil.which("npm"), "npm is needed for this test: install Node.js (Debian packages nodejs, npm)"
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--package-lock=false"],
        cwd=JS,
        check=True,
        capture_output=True,
        timeout=300,
    )


async def test_the_official_js_client_connects_hears_and_gets_an_ack(infra: Infra, keys: TestKeys) -> None:
    await asyncio.to_thread(_install_client)
    async with realtime_with_standins(infra, keys) as (url, app, services):
        command = {"name": "From JS", "price": 1999, "sku": "JS-1", "category_id": str(uuid.uuid4())}
        node = await asyncio.create_subprocess_exec(
            "node",
            str(JS / "client.mjs"),
            url,
            keys.mint(role="admin"),
            "product:add",
            json.dumps(command),
            stdout=asyncio.subprocess.PIPE,
        )
        assert node.stdout is not None
        lines: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(30):
                lines.append(json.loads(await node.stdout.readline()))
                assert lines[0]["step"] == "connected", lines
                product_id = str(uuid.uuid4())
                await publish(app, event("product.created", id=product_id, name="Seen by JS"))
                while line := await node.stdout.readline():
                    lines.append(json.loads(line))
                assert await node.wait() == 0, lines
        finally:
            if node.returncode is None:
                node.kill()
                await node.wait()
        notified = next(step for step in lines if step["step"] == "notified")
        assert notified["payload"]["data"]["id"] == product_id and notified["payload"]["event_id"]
        ack = next(step for step in lines if step["step"] == "ack")["ack"]
        assert ack["ok"] is True and ack["data"]["sku"] == "JS-1"
        assert [p["name"] for p in services.products.values()] == ["From JS"]
