"""Customer e-mails: made from events, sent over real SMTP once, retried through an outage, escaped."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from notifications_testkit import REFUSED, Shop

from libs.common.events import Envelope
from libs.common.testing import assert_problem, eventually
from services.notifications.service import send_next


def order_created(user_id: str, order_id: uuid.UUID, total: int = 2590) -> Envelope:
    return Envelope.new(
        "order.created",
        {
            "order_id": order_id,
            "user_id": user_id,
            "status": "pending_payment",
            "items": [
                {
                    "product_id": uuid.uuid4(),
                    "name": "Tea <b>cup</b>",
                    "unit_price": 1295,
                    "quantity": 2,
                    "line_total": 2590,
                },
            ],
            "subtotal": 2590,
            "total": total,
            "currency": "EUR",
            "created_at": datetime.now(UTC),
        },
        producer="orders",
    )


def status_changed(user_id: str, order_id: uuid.UUID, from_: str | None, to: str, **extra: Any) -> Envelope:
    return Envelope.new(
        "order.status_changed",
        {
            "order_id": order_id,
            "user_id": user_id,
            "from": from_,
            "to": to,
            "by": "payments",
            "reason": extra.get("reason"),
            "total": 2590,
            "currency": "EUR",
            "at": datetime.now(UTC),
        },
        producer="orders",
    )


async def test_a_new_customer_gets_one_welcome_mail_over_smtp(shop: Shop) -> None:
    user = await shop.sign_up(name="Ada Lovelace")
    [mail] = await shop.mails_to(user["email"])
    msg = mail.message
    assert msg["Subject"] == "Welcome to Lovelace & Co, Ada Lovelace"
    assert msg["To"].addresses[0].display_name == "Ada Lovelace"
    assert msg["From"] == "Shop <no-reply@shop.local>"
    assert "Hello Ada Lovelace" in mail.text and "Unter den Linden 1, 10117 Berlin" in mail.text
    # the shop's name is escaped in the HTML part like everything else
    assert "Lovelace &amp; Co" in mail.html and "Hello Ada Lovelace" in mail.html

    [row] = await shop.settled(to=user["email"])
    assert (row["template"], row["status"], row["attempts"], row["last_error"]) == (
        "welcome",
        "sent",
        1,
        None,
    )
    assert row["event_type"] == "user.registered" and row["user_id"] == user["id"]


async def test_a_redelivered_event_sends_no_second_mail(shop: Shop) -> None:
    user_id, address = uuid.uuid4(), f"twice-{uuid.uuid4().hex[:8]}@example.com"
    event = Envelope.new(
        "user.registered", {"user_id": user_id, "email": address, "name": "Twice"}, producer="auth"
    )
    await shop.publish(event)
    await shop.publish(event)  # the broker redelivers it: the inbox has it
    await shop.mails_to(address)
    # even past the inbox (its row gone, as after a replay from the dead-letter queue) the delivery
    # is unique per (event, template)
    assert shop.ctx.db is not None
    async with shop.ctx.db.session() as s, s.begin():
        await s.execute(sa.text("DELETE FROM processed_events WHERE event_id = :e"), {"e": event.id})
    await shop.publish(event)
    [row] = await shop.settled(to=address)
    assert row["status"] == "sent"
    assert len(shop.smtp.to(address)) == 1


async def test_order_mails_follow_the_order(shop: Shop) -> None:
    user = await shop.sign_up(name="Grace Hopper")
    await shop.mails_to(user["email"])  # the welcome
    order_id = uuid.uuid4()
    await shop.publish(order_created(user["id"], order_id))
    await shop.publish(status_changed(user["id"], order_id, "pending_payment", "paid"))
    _, confirmed = await shop.mails_to(user["email"], 2)
    number = str(order_id)[:8].upper()
    assert confirmed.message["Subject"] == f"Your Lovelace & Co order {number} is confirmed"
    assert "2 x Tea <b>cup</b>: 25.90 EUR" in confirmed.text
    assert "Tea &lt;b&gt;cup&lt;/b&gt;" in confirmed.html and "Total: 25.90 EUR" in confirmed.html

    await shop.publish(status_changed(user["id"], order_id, "paid", "processing"))  # no mail for this one
    await shop.publish(status_changed(user["id"], order_id, "processing", "cancelled", reason="out of ink"))
    refund = Envelope.new(
        "payment.refunded",
        {
            "payment_id": uuid.uuid4(),
            "order_id": order_id,
            "user_id": user["id"],
            "amount": 2590,
            "currency": "EUR",
            "payment_intent_id": "pi_1",
            "refund_id": "re_1",
        },
        producer="payments",
    )
    await shop.publish(refund)
    mails = await shop.mails_to(user["email"], 4)
    cancelled, refunded = mails[2], mails[3]
    assert "was cancelled (out of ink)" in cancelled.text and "will be refunded" in cancelled.text
    assert refunded.message["Subject"] == f"Lovelace & Co refunded 25.90 EUR for order {number}"
    templates = [d["template"] for d in await shop.settled(to=user["email"])]
    assert templates == ["order_refunded", "order_cancelled", "order_confirmed", "welcome"]


async def test_a_hostile_name_stays_text_and_adds_no_header(shop: Shop) -> None:
    address = f"mallory-{uuid.uuid4().hex[:8]}@example.com"
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    name = f'<script>alert(1)</script>"\r\nBcc: {victim}\r\n\r\n<img src=x onerror=alert(2)>'
    await shop.publish(
        Envelope.new(
            "user.registered", {"user_id": uuid.uuid4(), "email": address, "name": name}, producer="auth"
        )
    )
    [mail] = await shop.mails_to(address)
    assert mail.rcpt_tos == [address] and not shop.smtp.to(victim)
    msg = mail.message
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert "\n" not in str(msg["Subject"]) and "<script>" in str(msg["Subject"])  # a subject is text
    assert [a.addr_spec for a in msg["To"].addresses] == [address]
    assert "<script>" not in mail.html and "<img" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "<script>alert(1)</script>" in mail.text  # plain text shows the name as typed


async def test_mail_waits_out_an_smtp_outage_and_is_delivered_once_it_ends(shop: Shop) -> None:
    address = f"patient-{uuid.uuid4().hex[:8]}@example.com"
    shop.smtp.stop()
    try:
        await shop.publish(
            Envelope.new(
                "user.registered",
                {"user_id": uuid.uuid4(), "email": address, "name": "Patient"},
                producer="auth",
            )
        )

        async def retried() -> None:
            [row] = await shop.deliveries(to=address)
            # more attempts than email_max_attempts (2): an outage never fails a mail
            assert row["status"] == "pending" and row["attempts"] >= 3, row
            assert "connect" in row["last_error"].lower(), row["last_error"]

        await eventually(retried, timeout=15)
    finally:
        shop.smtp.start()
    await shop.mails_to(address, timeout=15)

    async def recorded() -> None:  # the row is marked once the server's "250" is back
        [row] = await shop.deliveries(to=address)
        assert row["status"] == "sent" and row["last_error"] is None

    await eventually(recorded)
    assert len(shop.smtp.to(address)) == 1


async def test_a_refused_address_is_failed_after_the_attempts(shop: Shop) -> None:
    address = f"{REFUSED}{uuid.uuid4().hex[:8]}@example.com"
    await shop.publish(
        Envelope.new(
            "user.registered", {"user_id": uuid.uuid4(), "email": address, "name": "Nobody"}, producer="auth"
        )
    )

    async def failed() -> None:
        [row] = await shop.deliveries(to=address)
        assert row["status"] == "failed" and row["attempts"] == 2, row
        assert "550" in row["last_error"]

    await eventually(failed, timeout=15)
    [row] = await shop.deliveries(to=address)
    # an admin tries it again (say the address was fixed at the server): one more attempt, now
    customer = shop.keys.bearer(user_id=uuid.uuid4(), role="user")
    assert_problem(await shop.client.post(f"/admin/emails/{row['id']}/retry", headers=customer), 403)
    assert_problem(await shop.client.post(f"/admin/emails/{row['id']}/retry"), 401)
    again = await shop.client.post(f"/admin/emails/{row['id']}/retry", headers=shop.admin)
    assert again.status_code == 200 and again.json()["status"] == "pending", again.text

    async def failed_again() -> None:
        [row] = await shop.deliveries(to=address)
        assert row["status"] == "failed" and row["attempts"] == 3, row

    await eventually(failed_again, timeout=15)


async def test_only_admins_list_the_emails(shop: Shop) -> None:
    user = await shop.sign_up()
    await shop.mails_to(user["email"])
    assert_problem(await shop.client.get("/admin/emails"), 401)
    customer = shop.keys.bearer(user_id=uuid.UUID(user["id"]), role="user")
    assert_problem(await shop.client.get("/admin/emails", headers=customer), 403)
    [row] = await shop.settled(to=user["email"], template="welcome")
    assert_problem(await shop.client.get(f"/admin/emails/{row['id']}", headers=customer), 403)
    detail = await shop.client.get(f"/admin/emails/{row['id']}", headers=shop.admin)
    assert detail.status_code == 200 and "Hello" in detail.json()["text"] and "<p>" in detail.json()["html"]
    assert_problem(await shop.client.get(f"/admin/emails/{uuid.uuid4()}", headers=shop.admin), 404)
    # a sent mail is not sent twice
    resent = await shop.client.post(f"/admin/emails/{row['id']}/retry", headers=shop.admin)
    assert assert_problem(resent, 409)["type"].endswith("/problems/email-already-sent")
    assert_problem(await shop.client.post(f"/admin/emails/{uuid.uuid4()}/retry", headers=shop.admin), 404)
    assert_problem(await shop.client.get("/admin/emails?template=nope", headers=shop.admin), 422)
    assert_problem(await shop.client.get("/admin/emails?page_size=101", headers=shop.admin), 422)

    page = await shop.client.get("/admin/emails", params={"page_size": 1, "page": 2}, headers=shop.admin)
    body = page.json()
    assert body["page"] == 2 and body["page_size"] == 1 and len(body["items"]) == 1 and body["total"] >= 2


def fulfilled(user_id: str, order_id: uuid.UUID, **fulfillment: Any) -> Envelope:
    return Envelope.new(
        "order.fulfilled",
        {
            "order_id": order_id,
            "user_id": user_id,
            "fulfillment": {"shipped_at": datetime.now(UTC), **fulfillment},
            "by": str(uuid.uuid4()),
        },
        producer="orders",
    )


async def test_the_shipped_mail_carries_the_tracking(shop: Shop) -> None:
    user = await shop.sign_up(name="Margaret Hamilton")
    await shop.mails_to(user["email"])  # the welcome
    order_id = uuid.uuid4()
    await shop.publish(order_created(user["id"], order_id))
    url = "https://www.dhl.de/track?piececode=0034&lang=en"
    await shop.publish(
        fulfilled(user["id"], order_id, carrier="DHL", tracking_number="0034043416", tracking_url=url)
    )
    # the status change to shipped that comes with it makes no second mail
    await shop.publish(status_changed(user["id"], order_id, "processing", "shipped"))
    _, shipped = await shop.mails_to(user["email"], 2)
    assert shipped.message["Subject"] == f"Your Lovelace & Co order {str(order_id)[:8].upper()} is on its way"
    assert "Carrier: DHL" in shipped.text and "Tracking number: 0034043416" in shipped.text
    assert f"Track it: {url}" in shipped.text
    assert '<a href="https://www.dhl.de/track?piececode=0034&amp;lang=en">' in shipped.html
    assert [d["template"] for d in await shop.settled(to=user["email"])] == ["order_shipped", "welcome"]


async def test_a_tracking_link_that_is_not_http_is_left_out(shop: Shop) -> None:
    user = await shop.sign_up()
    await shop.mails_to(user["email"])
    order_id = uuid.uuid4()
    await shop.publish(
        fulfilled(
            user["id"],
            order_id,
            carrier="<b>Evil</b>",
            tracking_number="1",
            tracking_url="javascript:alert(1)",
        )
    )
    _, shipped = await shop.mails_to(user["email"], 2)
    assert "javascript" not in shipped.html and "javascript" not in shipped.text and "<a href" in shipped.html
    assert "&lt;b&gt;Evil&lt;/b&gt;" in shipped.html


async def test_senders_racing_for_the_same_mail_send_it_once(shop: Shop) -> None:
    """Replicas each run a sender: a due row is taken by one of them (SKIP LOCKED), never two."""
    addresses = [f"race-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(8)]
    shop.smtp.stop()
    try:
        for address in addresses:
            await shop.publish(
                Envelope.new(
                    "user.registered",
                    {"user_id": uuid.uuid4(), "email": address, "name": "Racer"},
                    producer="auth",
                )
            )
    finally:
        shop.smtp.start()

    async def sender() -> None:
        for _ in range(200):
            if not await send_next(shop.ctx):
                await asyncio.sleep(0.05)
            if all(shop.smtp.to(a) for a in addresses):
                return

    # four more senders beside the app's own, all on the same database
    await asyncio.gather(*(sender() for _ in range(4)))
    for address in addresses:
        [row] = await shop.settled(to=address)
        assert row["status"] == "sent"
        assert len(shop.smtp.to(address)) == 1, address


def return_event(
    user_id: str, order_id: uuid.UUID, return_id: uuid.UUID, status: str, amount: int | None
) -> Envelope:
    return Envelope.new(
        f"return.{status}",
        {
            "return_id": return_id,
            "order_id": order_id,
            "user_id": user_id,
            "status": status,
            "items": [
                {
                    "line_id": 0,
                    "product_id": uuid.uuid4(),
                    "name": "Tea <b>cup</b>",
                    "quantity": 1,
                    "reason": "chipped",
                    "refund_amount": amount,
                },
            ],
            "note": None,
            "refund_amount": amount,
            "currency": "EUR",
            "by": "payments",
            "at": datetime.now(UTC),
        },
        producer="orders",
    )


async def test_each_step_of_a_return_is_mailed_and_its_refund_once(shop: Shop) -> None:
    user = await shop.sign_up(name="Ada Return")
    await shop.mails_to(user["email"])  # the welcome
    order_id, return_id = uuid.uuid4(), uuid.uuid4()
    number = str(order_id)[:8].upper()
    await shop.publish(return_event(user["id"], order_id, return_id, "requested", None))
    await shop.publish(return_event(user["id"], order_id, return_id, "received", 1295))
    refund = Envelope.new(
        "payment.refunded",
        {
            "payment_id": uuid.uuid4(),
            "order_id": order_id,
            "user_id": user["id"],
            "amount": 1295,
            "currency": "EUR",
            "payment_intent_id": "pi_1",
            "refund_id": "re_1",
            "return_id": return_id,
        },
        producer="payments",
    )
    await shop.publish(refund)  # the return's refund: told by return.refunded, not a second mail
    await shop.publish(return_event(user["id"], order_id, return_id, "refunded", 1295))
    mails = await shop.mails_to(user["email"], 4)
    subjects = [str(m.message["Subject"]) for m in mails[1:]]
    assert subjects == [
        f"We received your return request for order {number}",
        f"We received the items you returned from order {number}",
        f"Lovelace & Co refunded 12.95 EUR for your return from order {number}",
    ]
    assert "1 x Tea <b>cup</b> (chipped)" in mails[1].text and "Tea &lt;b&gt;cup&lt;/b&gt;" in mails[1].html
    assert "12.95 EUR will be refunded" in mails[2].text
    rows = await shop.settled(to=user["email"])
    assert [r["template"] for r in rows].count("return_update") == 3 and len(rows) == 4
