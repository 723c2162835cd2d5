"""What one client may make the server do: replays bounded, floods closed with a reason."""

from __future__ import annotations

import asyncio
import uuid

from realtime_testkit import event, hang_up, listen, publish, realtime, realtime_with_standins

from libs.common.testing import Infra, TestKeys, eventually

CATEGORY = str(uuid.uuid4())  # the one category these tests keep changing


async def test_resuming_again_and_again_replays_a_gap_once(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys) as (url, app):
        watcher = await listen(url)
        await publish(app, *(event("category.updated", id=CATEGORY, position=i) for i in range(8)))
        seqs = sorted(n["seq"] for n in await watcher.hears("category:updated", 8))
        guest = await listen(url)
        acks = await asyncio.gather(
            *(guest.sio.call("resume", {"public": seqs[4]}, timeout=10) for _ in range(30))
        )
        assert all(ack["ok"] for ack in acks)
        await guest.hears("category:updated", 3)
        await asyncio.sleep(0.5)
        assert [n["seq"] for n in guest.of("category:updated")] == seqs[5:]
        await hang_up(watcher, guest)


async def test_a_gap_larger_than_the_replay_limit_gets_resync_not_a_torrent(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime(infra, keys, replay_limit=5) as (url, app):
        watcher = await listen(url)
        await publish(app, *(event("category.updated", id=CATEGORY, position=i) for i in range(8)))
        first = min(n["seq"] for n in await watcher.hears("category:updated", 8))
        late = await listen(url, {"last_seq": {"public": first - 1}})
        assert (await late.hears("resync"))[0]["room"] == "public"
        await asyncio.sleep(0.3)
        assert late.of("category:updated") == []
        await hang_up(watcher, late)


async def test_a_flooding_guest_is_disconnected_with_a_reason(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys, message_burst=20, message_rate=5) as (url, _):
        guest = await listen(url)
        bystander = await listen(url)
        for _ in range(60):
            if not guest.sio.connected:
                break
            await guest.sio.emit("resume", {"public": 0})

        async def gone() -> None:
            assert not guest.sio.connected

        await eventually(gone, timeout=5)
        assert "Too many messages" in guest.of("session:ended")[0]["reason"]
        assert bystander.sio.connected
        await hang_up(bystander)


async def test_a_customer_flooding_admin_commands_is_cut_off_and_reaches_no_service(
    infra: Infra, keys: TestKeys
) -> None:
    async with realtime_with_standins(infra, keys, message_burst=20, message_rate=0.01) as (url, _, services):
        user = await listen(url, {"token": keys.mint()})
        answered = 0
        for _ in range(200):
            if not user.sio.connected:
                break
            try:
                ack = await user.sio.call("product:add", {"name": "x"}, timeout=2)
            except Exception:  # the server closed the connection under this call
                break
            answered += 1
            assert ack["ok"] is False and ack["error"]["status"] in (403, 429)

        async def gone() -> None:
            assert not user.sio.connected

        await eventually(gone, timeout=5)
        assert answered <= 21 and services.calls == []
        assert "Too many messages" in user.of("session:ended")[0]["reason"]


async def test_one_user_cannot_get_round_the_limit_with_several_connections(
    infra: Infra, keys: TestKeys
) -> None:
    user_id = uuid.uuid4()
    async with realtime(infra, keys, message_burst=100, user_message_burst=30, user_message_rate=1) as (
        url,
        _,
    ):
        sockets = [await listen(url, {"token": keys.mint(user_id=user_id)}) for _ in range(3)]
        other = await listen(url, {"token": keys.mint()})
        for _ in range(15):
            for ear in sockets:
                if ear.sio.connected:
                    await ear.sio.emit("auth:refresh", {"token": "bad"})
            await asyncio.sleep(0.01)

        async def cut_off() -> None:
            assert not all(ear.sio.connected for ear in sockets)

        await eventually(cut_off, timeout=5)
        ack = await other.sio.call("auth:refresh", {"token": "bad"}, timeout=5)
        assert ack["error"]["status"] == 401  # another user's allowance is untouched
        await hang_up(other, *sockets)


async def test_reconnecting_does_not_refill_a_users_allowance(infra: Infra, keys: TestKeys) -> None:
    user_id = uuid.uuid4()
    async with realtime(infra, keys, message_burst=100, user_message_burst=30, user_message_rate=1) as (
        url,
        _,
    ):
        first = await listen(url, {"token": keys.mint(user_id=user_id)})
        for _ in range(20):
            assert (await first.sio.call("auth:refresh", {"token": "bad"}, timeout=5))["error"][
                "status"
            ] == 401
        await first.sio.disconnect()
        again = await listen(url, {"token": keys.mint(user_id=user_id)})
        for _ in range(20):
            if not again.sio.connected:
                break
            await again.sio.emit("auth:refresh", {"token": "bad"})

        async def cut_off() -> None:
            assert not again.sio.connected

        await eventually(cut_off, timeout=5)
        assert "Too many messages" in again.of("session:ended")[0]["reason"]
