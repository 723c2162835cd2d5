"""The webhook sender: takes due deliveries and POSTs them, each endpoint within its own budget.

One slow or dead endpoint never delays another's deliveries: at most WEBHOOK_ENDPOINT_CONCURRENCY
POSTs are in flight to one endpoint (counted across replicas by their leases) and WEBHOOK_CONCURRENCY
in all, each bounded by WEBHOOK_TIMEOUT, so a hanging receiver holds its own slots and nobody else's.
A delivery is taken with ``FOR UPDATE SKIP LOCKED`` and leased for longer than a POST can take, then
the row lock is dropped while the endpoint is talked to: two replicas never send it at once, and one
that dies leaves it to be taken again when the lease ends (at-least-once; receivers dedupe by
``Shop-Event-Id``).

Connections go through ``webhook_security.GuardedBackend``: what is checked is what is connected
to. No redirect is followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import typing
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import sqlalchemy as sa

from libs.common.events import publish_in
from libs.common.logging import get_logger
from libs.common.tasks import cancel_and_wait
from libs.contracts.notifications import EVENTS, WebhookDisabled
from services.notifications import webhooks
from services.notifications.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.notifications.webhook_security import signature_header

if typing.TYPE_CHECKING:
    from services.notifications.context import NotificationsContext

log = get_logger(__name__)
USER_AGENT = "Shop-Webhooks/1.0"
# a lease outlives the POST it covers by this much (the row is updated after the answer)
LEASE_MARGIN = 30.0


@dataclass
class Job:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    url: str
    body: bytes
    secrets: list[str]


@dataclass
class Outcome:
    succeeded: bool
    response_code: int | None
    duration_ms: int
    response_body: str | None
    error: str | None


def _now() -> datetime:
    return datetime.now(UTC)


# the endpoints with something due, each locked by one claimer at a time (others skip it), so the
# leases counted next are every replica's: the budget holds across replicas
_LOCK_ENDPOINTS = sa.text(
    """
SELECT e.id FROM webhook_endpoints e
 WHERE e.active AND EXISTS (
        SELECT 1 FROM webhook_deliveries w
         WHERE w.endpoint_id = e.id AND w.status = 'pending' AND w.next_attempt_at <= now()
           AND (w.lease_until IS NULL OR w.lease_until <= now()))
   FOR NO KEY UPDATE OF e SKIP LOCKED
"""
)
# due deliveries per locked endpoint (a lateral subquery: one endpoint's backlog cannot crowd the
# others out of a claim), with the leases its deliveries hold now; run as a second statement, so
# its snapshot is taken after the endpoint locks and sees every claim committed before them
_CLAIM = sa.text(
    """
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.body,
       (SELECT count(*) FROM webhook_deliveries f
         WHERE f.endpoint_id = e.id AND f.status = 'pending' AND f.lease_until > now()) AS leased
  FROM webhook_endpoints e
  CROSS JOIN LATERAL (
        SELECT id, endpoint_id, event_id, event_type, body FROM webhook_deliveries w
         WHERE w.endpoint_id = e.id AND w.status = 'pending' AND w.next_attempt_at <= now()
           AND (w.lease_until IS NULL OR w.lease_until <= now())
         ORDER BY w.next_attempt_at
         LIMIT :per_endpoint
           FOR UPDATE SKIP LOCKED) d
 WHERE e.id = ANY(:endpoints)
"""
)


async def claim(ctx: NotificationsContext) -> list[Job]:
    """Lease the due deliveries this replica has room for, within each endpoint's budget."""
    assert ctx.db is not None
    s, state = ctx.settings, ctx.state.webhooks
    room = s.webhook_concurrency - sum(state.in_flight.values())
    if room <= 0:
        return []
    now = _now()
    async with ctx.db.session() as session, session.begin():
        locked = list((await session.execute(_LOCK_ENDPOINTS)).scalars())
        if not locked:
            return []
        rows = (
            await session.execute(
                _CLAIM, {"per_endpoint": s.webhook_endpoint_concurrency, "endpoints": locked}
            )
        ).all()
        if not rows:
            return []
        taken: list[Any] = []
        per_endpoint: Counter[uuid.UUID] = Counter()
        for row in rows:
            busy = max(row.leased, state.in_flight[row.endpoint_id]) + per_endpoint[row.endpoint_id]
            if busy >= s.webhook_endpoint_concurrency or len(taken) >= room:
                continue
            per_endpoint[row.endpoint_id] += 1
            taken.append(row)
        if not taken:
            return []
        endpoints = {
            e.id: e
            for e in await session.scalars(
                sa.select(WebhookEndpoint).where(WebhookEndpoint.id.in_({r.endpoint_id for r in taken}))
            )
        }
        await session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([r.id for r in taken]))
            .values(lease_until=now + timedelta(seconds=s.webhook_timeout + LEASE_MARGIN))
        )
    return [
        Job(
            delivery_id=r.id,
            endpoint_id=r.endpoint_id,
            event_id=r.event_id,
            event_type=r.event_type,
            url=endpoints[r.endpoint_id].url,
            body=r.body.encode(),
            secrets=webhooks.signing_secrets(endpoints[r.endpoint_id], now),
        )
        for r in taken
    ]


async def post(ctx: NotificationsContext, job: Job) -> Outcome:
    """POST one delivery, signed now; never raises for what the endpoint or the network does."""
    s, state = ctx.settings, ctx.state.webhooks
    assert state.pool is not None
    timestamp = int(time.time())
    headers = [
        (b"Content-Type", b"application/json"),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Shop-Event-Id", str(job.event_id).encode()),
        (b"Shop-Event-Type", job.event_type.encode()),
        (b"Shop-Signature", signature_header(job.secrets, timestamp, job.body).encode()),
    ]
    limit = s.webhook_response_body_limit
    t = s.webhook_timeout
    started = time.perf_counter()
    code: int | None = None
    kept = b""
    try:
        async with asyncio.timeout(t):
            async with state.pool.stream(
                "POST",
                job.url,
                headers=headers,
                content=job.body,
                extensions={"timeout": {"connect": t, "read": t, "write": t, "pool": t}},
            ) as response:
                code = response.status
                async for chunk in response.aiter_stream():
                    kept += chunk[: limit - len(kept)]
                    if len(kept) >= limit:
                        break
    except TimeoutError:
        error: str | None = f"no answer within {t:g} s"
    except httpcore.TimeoutException as exc:
        error = f"timed out ({type(exc).__name__})"
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
        error = str(exc) or type(exc).__name__
    else:
        error = None
    duration_ms = round((time.perf_counter() - started) * 1000)
    ok = error is None and code is not None and 200 <= code < 300
    if error is None and not ok:
        error = f"answered {code}" + (" (redirects are not followed)" if code and 300 <= code < 400 else "")
    return Outcome(
        succeeded=ok,
        response_code=code,
        duration_ms=duration_ms,
        # text columns cannot hold NUL: a receiver answering one must not make its attempt unrecordable
        response_body=kept.decode("utf-8", "replace").replace("\x00", "") if code is not None else None,
        error=error.replace("\x00", "") if error else None,
    )


def retry_delay(ctx: NotificationsContext, attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failure: base, doubling, capped."""
    s = ctx.settings
    return timedelta(seconds=min(s.webhook_retry_base * 2 ** max(attempts - 1, 0), s.webhook_retry_max))


async def record(ctx: NotificationsContext, job: Job, outcome: Outcome) -> None:
    """Keep the attempt, move the delivery on, and count the endpoint's failures in a row.

    The failure that reaches WEBHOOK_DISABLE_AFTER turns the endpoint off and publishes
    ``webhook.disabled`` in the same transaction (once: only the update that flips ``active`` does)."""
    assert ctx.db is not None
    s = ctx.settings
    now = _now()
    async with ctx.db.session() as session, session.begin():
        # the endpoint's row before the delivery's, the order a delete takes them in (no deadlock)
        endpoint = await session.scalar(
            sa.select(WebhookEndpoint.id)
            .where(WebhookEndpoint.id == job.endpoint_id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: it is updated below
        )
        delivery = await session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
        if endpoint is None or delivery is None:  # the endpoint was deleted meanwhile
            return
        session.add(
            WebhookAttempt(
                id=uuid.uuid4(),
                delivery_id=job.delivery_id,
                succeeded=outcome.succeeded,
                response_code=outcome.response_code,
                duration_ms=outcome.duration_ms,
                response_body=outcome.response_body,
                error=outcome.error,
                started_at=now - timedelta(milliseconds=outcome.duration_ms),
            )
        )
        delivery.attempts += 1
        delivery.response_code = outcome.response_code
        delivery.duration_ms = outcome.duration_ms
        delivery.lease_until = None
        if outcome.succeeded:
            delivery.status = "succeeded"
            delivery.delivered_at = now
            delivery.last_error = None
            await session.execute(
                sa.update(WebhookEndpoint)
                .where(WebhookEndpoint.id == job.endpoint_id)
                .values(consecutive_failures=0)
            )
            log.info("webhook_delivered", delivery_id=str(job.delivery_id), attempts=delivery.attempts)
            return
        delivery.last_error = outcome.error
        retry_at = now + retry_delay(ctx, delivery.attempts)
        if retry_at > delivery.give_up_at:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = retry_at
        failures = await session.scalar(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == job.endpoint_id, WebhookEndpoint.active)
            .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
            .returning(WebhookEndpoint.consecutive_failures)
        )
        log.warning(
            "webhook_not_delivered",
            delivery_id=str(job.delivery_id),
            attempts=delivery.attempts,
            error=outcome.error,
            gave_up=delivery.status == "failed",
        )
        if failures is not None and failures >= s.webhook_disable_after:
            await _disable(session, job.endpoint_id, failures=failures, error=outcome.error, now=now)


async def _disable(
    session: Any, endpoint_id: uuid.UUID, *, failures: int, error: str | None, now: datetime
) -> None:
    endpoint = await session.scalar(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.active)
        .values(
            active=False,
            disabled_at=now,
            disabled_reason=f"{failures} failed attempts in a row; the last: {error}",
            updated_at=now,
        )
        .returning(WebhookEndpoint)
    )
    if endpoint is None:
        return
    await publish_in(
        session,
        EVENTS.envelope(
            "webhook.disabled",
            WebhookDisabled(
                id=endpoint.id,
                url=endpoint.url,
                description=endpoint.description,
                consecutive_failures=failures,
                last_error=error,
                disabled_at=now,
            ),
        ),
    )
    log.warning("webhook_disabled", webhook_id=str(endpoint_id), failures=failures)


async def deliver(ctx: NotificationsContext, job: Job) -> None:
    """POST one leased delivery and record how it went (the slot is given back whatever happens)."""
    state = ctx.state.webhooks
    try:
        outcome = await post(ctx, job)
        await record(ctx, job, outcome)
    except Exception as exc:  # recording failed (database down): the lease ends and it is retried
        log.warning("webhook_record_failed", delivery_id=str(job.delivery_id), error=repr(exc))
    finally:
        state.in_flight[job.endpoint_id] -= 1
        if state.in_flight[job.endpoint_id] <= 0:
            del state.in_flight[job.endpoint_id]
        state.wake()


async def _until_next_due(ctx: NotificationsContext) -> float:
    """Seconds until the next retry falls due (a back-off shorter than the poll interval is kept)."""
    assert ctx.db is not None
    poll = ctx.settings.webhook_poll_interval
    async with ctx.db.session() as session:
        due = await session.scalar(
            sa.select(sa.func.min(WebhookDelivery.next_attempt_at))
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.status == "pending", WebhookEndpoint.active)
        )
    wait = (due - _now()).total_seconds() if due is not None else poll
    # overdue yet not claimed: its endpoint is at its budget (a slot freed here wakes the loop)
    return poll if wait <= 0 else min(poll, wait)


async def run_webhook_sender(ctx: NotificationsContext) -> None:
    """Background loop: lease what is due and has room, POST each in its own task, sleep until woken."""
    state = ctx.state.webhooks
    try:
        while True:
            state.due.clear()
            jobs = await claim(ctx)
            for job in jobs:
                state.in_flight[job.endpoint_id] += 1
                task = asyncio.create_task(deliver(ctx, job), name=f"webhook-{job.delivery_id}")
                state.tasks.add(task)
                task.add_done_callback(state.tasks.discard)
            if jobs:
                continue
            pause = await _until_next_due(ctx)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.due.wait(), timeout=pause)
    finally:
        await cancel_and_wait(list(state.tasks))
