"""The one rule for a bad event, as realtime keeps it: what does not parse as its producer's model
is dead-lettered with the reason, reaches no socket and takes no number in any room."""

from __future__ import annotations

import asyncio
import uuid

from realtime_testkit import event, hang_up, listen, publish, realtime

from libs import contracts
from libs.common.events import Envelope, topic_matches
from libs.common.parts import BY_NAME
from libs.common.testing import Infra, TestKeys, dead_lettered
from services.realtime.notifications import ROUTES


async def test_a_malformed_or_undeclared_event_is_dead_lettered_and_nobody_hears_it(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime(infra, keys) as (url, app):
        ctx = app.state.ctx
        guest = await listen(url)
        admin = await listen(url, {"token": keys.mint(role="admin")})
        lamp = str(uuid.uuid4())
        added = event("product.created", id=lamp, price=2500, is_active=True, version=1)
        await publish(app, added)
        first = (await guest.hears("product:added"))[0]["seq"]

        # catalog's whole product, but a price that is not minor units and no version
        data = {**event("product.updated", id=lamp, price=1900, version=2).data, "price": "19.50"}
        del data["version"]
        malformed = Envelope.new("product.updated", data, producer="catalog")
        # realtime's queue is bound to product.*, so a type no part declares does arrive
        undeclared = Envelope.new("product.archived", {"id": lamp}, producer="catalog")
        await publish(app, malformed, undeclared)

        letter = await dead_lettered(ctx.bus, "realtime", malformed.id)
        assert letter.error.startswith("product.updated data is not a valid ProductPublic: "), letter.error
        assert "price: Input should be a valid integer" in letter.error, letter.error
        assert "version: Field required" in letter.error, letter.error
        letter = await dead_lettered(ctx.bus, "realtime", undeclared.id)
        assert "no part declares the event 'product.archived'" in letter.error, letter.error
        seen = [f"{ctx.settings.redis_prefix}realtime:seen:{env.id}" for env in (malformed, undeclared)]
        assert await ctx.redis.exists(*seen) == 0  # a fixed redelivery would still be stored

        valid = event("product.updated", id=lamp, price=1900, is_active=True, version=2)
        await publish(app, valid)
        updated = (await guest.hears("product:updated"))[0]
        assert updated["event_id"] == str(valid.id) and updated["data"]["price"] == 1900
        assert updated["seq"] == first + 1  # the bad ones took no number: no gap for a client to chase
        await asyncio.sleep(0.3)
        # admins hear everything realtime relays: nothing of the bad two. Only this test's four events
        # are looked at: the suite's other tests publish on the same broker (one heard in a full run
        # was another test's order:statusUpdated)
        ours = {str(e.id) for e in (added, malformed, undeclared, valid)}
        for ear in (guest, admin):
            assert [(name, n["event_id"]) for name, n in ear.heard if n.get("event_id") in ours] == [
                ("product:added", str(added.id)),
                ("product:updated", str(valid.id)),
            ]
        await hang_up(guest, admin)


async def test_a_field_a_newer_producer_added_is_left_out_and_the_rest_relayed(
    infra: Infra, keys: TestKeys
) -> None:
    """Tolerant reader: the notification is still sent, in the shape AsyncAPI documents."""
    async with realtime(infra, keys) as (url, app):
        admin = await listen(url, {"token": keys.mint(role="admin")})
        published = event("user.registered", email="new@example.com", name="New").data
        newer = Envelope.new("user.registered", {**published, "referrer": "friend"}, producer="auth")
        await publish(app, newer)
        told = (await admin.hears("user:registered"))[0]
        assert told["event_id"] == str(newer.id) and told["data"] == published
        await hang_up(admin)


def test_every_event_realtimes_queue_receives_has_a_route_and_owner_routes_know_the_owner() -> None:
    """A part declaring a new event realtime is bound to must decide who hears it, or this fails."""
    published = {key: declared.model for c in contracts.catalogues() for key, declared in c.events.items()}
    bound = BY_NAME["realtime"].consumes
    assert {key for key in published if any(topic_matches(p, key) for p in bound)} == set(ROUTES)
    for key, (_, audience) in ROUTES.items():
        if audience == "owner":
            assert "user_id" in published[key].model_fields, key
