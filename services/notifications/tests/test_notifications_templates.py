"""Every template with a hostile customer: the HTML stays text, the headers stay one each.

The mails are rendered and serialised exactly as the sender does (``rendering.render``,
``mail.build_message``), then parsed back as a receiving mail server would."""

from __future__ import annotations

import email
import email.policy
import uuid
from email.message import EmailMessage

import pytest

from services.notifications import mail, rendering
from services.notifications.settings import NotificationsSettings

NAME = '<script>alert(1)</script>"\r\nBcc: victim@example.com\r\n\r\n<img src=x onerror=alert(2)>'
ITEM = "<b>Mug</b>\r\nX-Injected: yes"
CONTEXT = {
    "shop": {"name": "Shop & <Co>", "address": "1 <i>Street</i>", "url": "https://shop.example"},
    "order": {
        "id": str(uuid.uuid4()),
        "number": "ABCD1234",
        "lines": [{"name": ITEM, "quantity": 1, "line_total": 1000}],
        "total": 1000,
        "currency": "EUR",
    },
    "reason": "<script>x</script>",
    "was_paid": True,
    "fulfillment": {"carrier": ITEM, "tracking_number": "<1>", "tracking_url": "javascript:alert(3)"},
    "amount": 500,
    "currency": "EUR",
    "status": "requested",
    "items": [{"name": ITEM, "quantity": 1, "reason": "<script>y</script>"}],
    "refund_amount": 500,
}


CASES = [(t, "requested") for t in sorted(rendering.NAMES - {"return_update"})] + [
    ("return_update", s) for s in ("requested", "approved", "rejected", "received", "refunded")
]


@pytest.mark.parametrize(("template", "status"), CASES)
def test_a_hostile_name_and_items_stay_text_in_every_mail(template: str, status: str) -> None:
    to = "mallory@example.com"
    rendered = rendering.render(
        template, {**CONTEXT, "status": status, "recipient": {"name": NAME, "email": to}}
    )
    settings = NotificationsSettings(_env_file=None)
    message = mail.build_message(
        settings, delivery_id=uuid.uuid4(), to_address=to, to_name=NAME, mail=rendered
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert [a.addr_spec for a in parsed["To"].addresses] == [to]
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert "\n" not in str(parsed["Subject"])
    html = parsed.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    body = str(html.get_content())
    for raw in ("<script>", "<img", "<b>", "<i>", "javascript:"):
        assert raw not in body, (template, raw)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # the name, shown as typed
