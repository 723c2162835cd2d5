"""Dead letters you can act on: ``python -m libs.common.events dlq list|show|replay --service NAME``.

``list`` shows what sits in a service's dead-letter queue (message id, event type and
id, routing key, attempts, when and why it failed); ``show`` prints message bodies;
``replay`` moves the chosen messages (``--id``, repeatable) or ``--all`` back to the
service's queue, where they are handled again with a fresh attempt count. The broker
and names come from the environment (``AMQP_URL``, ``EVENTS_EXCHANGE``,
``EVENTS_QUEUE_PREFIX``), as for the services.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import aio_pika
import orjson

from libs.common.config import CommonSettings
from libs.common.events.amqp import AmqpBus
from libs.common.events.bus import DeadLetter
from libs.common.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m libs.common.events", description="Inspect and replay the event bus's dead letters."
    )
    groups = parser.add_subparsers(dest="group", required=True)
    dlq = groups.add_parser("dlq", help="a service's dead-letter queue")
    actions = dlq.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list the dead letters"),
        ("show", "print message bodies"),
        ("replay", "move dead letters back to the service's queue"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("--service", required=True, help="consuming service, e.g. orders")
        p.add_argument(
            "--id", dest="ids", action="append", default=[], metavar="MSGID", help="a message id (repeatable)"
        )
        if name == "replay":
            p.add_argument("--all", action="store_true", help="replay every dead letter")
    return parser


def _event_fields(letter: DeadLetter) -> tuple[str, str]:
    """The event's type and id, or a marker when the body is not an envelope (poison)."""
    try:
        body = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        return "<not JSON>", "-"
    if not isinstance(body, dict):
        return "<not an envelope>", "-"
    return str(body.get("type", "?")), str(body.get("id", "?"))


def _print_list(letters: Sequence[DeadLetter], queue: str) -> None:
    print(f"{len(letters)} dead letter(s) in {queue}")
    for d in letters:
        event_type, event_id = _event_fields(d)
        print(
            f"- message_id={d.message_id} event_type={event_type} event_id={event_id} "
            f"routing_key={d.routing_key} attempts={d.attempts} dead_at={d.dead_at.isoformat()}"
        )
        print(f"  error: {d.error}")


def _print_bodies(letters: Sequence[DeadLetter]) -> None:
    for d in letters:
        print(f"# message_id={d.message_id} routing_key={d.routing_key} attempts={d.attempts}")
        try:
            print(orjson.dumps(orjson.loads(d.body), option=orjson.OPT_INDENT_2).decode())
        except orjson.JSONDecodeError:
            print(d.body.decode("utf-8", errors="replace"))


async def _queue_exists(url: str, name: str) -> bool:
    conn = await aio_pika.connect(url, timeout=10)
    try:
        channel = await conn.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True
    finally:
        await conn.close()


async def run(args: argparse.Namespace, settings: CommonSettings) -> int:
    bus = AmqpBus(
        settings.amqp_url,
        exchange=settings.events_exchange,
        queue_prefix=settings.events_queue_prefix,
        retry_delays=settings.event_retry_delays,
        max_attempts=settings.event_max_attempts,
        queue_type=settings.event_queue_type,
        queue_expires=settings.event_queue_expires,
    )
    await bus.start()
    try:
        await bus.wait_connected(10)
        queue = f"{bus.queue_name(args.service)}.dlq"
        if not await _queue_exists(settings.amqp_url, queue):
            # a typo must not create a durable queue nobody will ever read
            print(
                f"there is no queue {queue}: is --service the name of a consuming service?", file=sys.stderr
            )
            return 1
        if args.action == "replay":
            if not args.ids and not args.all:
                print("replay needs --id MSGID (repeatable) or --all", file=sys.stderr)
                return 2
            count = await bus.replay(args.service, None if args.all else args.ids)
            print(f"replayed {count} message(s) from {queue} to {bus.queue_name(args.service)}")
            return 0 if args.all or count == len(set(args.ids)) else 1
        letters = await bus.dead_letters(args.service)
        if args.ids:
            letters = [d for d in letters if d.message_id in args.ids]
            missing = set(args.ids) - {d.message_id for d in letters}
            if missing:
                print(f"not in {queue}: {', '.join(sorted(missing))}", file=sys.stderr)
        if args.action == "list":
            _print_list(letters, queue)
        else:
            if not args.ids:
                print("show needs --id MSGID (repeatable)", file=sys.stderr)
                return 2
            _print_bodies(letters)
        return 1 if args.ids and len(letters) < len(set(args.ids)) else 0
    finally:
        await bus.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = CommonSettings()
    # logs go to stderr so that stdout is only the listing
    configure_logging(service="dlq", level="WARNING", json=False)
    try:
        return asyncio.run(run(args, settings))
    except TimeoutError:
        print(f"RabbitMQ at {settings.amqp_url.split('@')[-1]} cannot be reached", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
