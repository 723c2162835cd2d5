"""``python -m libs.common.events dlq ...`` run as a real process against a DLQ a test filled."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

from libs.common.events import Envelope
from libs.common.testing import Infra, eventually

if TYPE_CHECKING:
    from common_testkit import AmqpNames


async def dlq(infra: Infra, amqp: AmqpNames, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        **infra.env(),
        "EVENTS_EXCHANGE": amqp.exchange,
        "EVENTS_QUEUE_PREFIX": amqp.queue_prefix,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.common.events",
        "dlq",
        *args,
        env=env,
        cwd=os.getcwd(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_operator_lists_shows_and_replays_dead_letters(infra: Infra, amqp: AmqpNames) -> None:
    handled: list[Envelope] = []
    broken = True

    async def handler(envelope: Envelope) -> None:
        if broken:
            raise ValueError(f"no such order {envelope.data['order_id']}")
        handled.append(envelope)

    bus = amqp.bus()
    bus.subscribe("orders", ["payment.*"], handler)
    await bus.start()
    try:
        first = Envelope.new("payment.succeeded", {"order_id": "o-1", "amount": 990}, producer="payments")
        second = Envelope.new("payment.failed", {"order_id": "o-2", "amount": 120}, producer="payments")
        await bus.publish(first)
        await bus.publish(second)
        await bus.publish_raw("payment.succeeded", b"\x00garbage", message_id="poison-7")

        async def all_dead() -> None:
            assert len(await bus.dead_letters("orders")) == 3

        await eventually(all_dead, timeout=10)

        code, out, err = await dlq(infra, amqp, "list", "--service", "orders")
        assert code == 0, err
        assert f"3 dead letter(s) in {amqp.queue_prefix}orders.events.dlq" in out
        line = next(x for x in out.splitlines() if f"message_id={first.id}" in x)
        assert f"event_id={first.id}" in line and "event_type=payment.succeeded" in line
        assert "routing_key=payment.succeeded" in line and "attempts=3" in line
        assert "ValueError: no such order o-1" in out
        assert "message_id=poison-7 event_type=<not JSON>" in out and "attempts=1" in out

        code, out, _ = await dlq(infra, amqp, "show", "--service", "orders", "--id", str(second.id))
        assert code == 0
        assert '"order_id": "o-2"' in out and "o-1" not in out

        code, _, err = await dlq(infra, amqp, "show", "--service", "orders", "--id", "no-such-id")
        assert code == 1 and "no-such-id" in err

        broken = False
        code, out, err = await dlq(infra, amqp, "replay", "--service", "orders", "--id", str(first.id))
        assert code == 0, err
        assert "replayed 1 message(s)" in out

        async def first_handled() -> None:
            assert [e.id for e in handled] == [first.id]

        await eventually(first_handled, timeout=5)
        remaining = await bus.dead_letters("orders")
        assert sorted(d.message_id for d in remaining) == sorted([str(second.id), "poison-7"])

        code, out, _ = await dlq(infra, amqp, "replay", "--service", "orders")
        assert code == 2, "replay without --id or --all must not replay everything by accident"
        code, out, err = await dlq(infra, amqp, "replay", "--service", "orders", "--all")
        assert code == 0, err
        assert "replayed 2 message(s)" in out

        async def second_handled_poison_back() -> None:
            assert sorted(str(e.id) for e in handled) == sorted([str(first.id), str(second.id)])
            assert [d.message_id for d in await bus.dead_letters("orders")] == ["poison-7"]

        await eventually(second_handled_poison_back, timeout=5)
    finally:
        await bus.close()


async def test_unknown_service_is_reported_and_no_queue_is_created(infra: Infra, amqp: AmqpNames) -> None:
    code, _, err = await dlq(infra, amqp, "list", "--service", "ordres")
    assert code == 1 and "no queue" in err and f"{amqp.queue_prefix}ordres.events.dlq" in err
    code, _, _ = await dlq(infra, amqp, "list", "--service", "ordres")
    assert code == 1, "the first call must not have created the queue"
