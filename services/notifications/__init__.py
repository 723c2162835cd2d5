"""Notifications: the e-mails a customer gets after they act (DESIGN.md section 10, "After the order").

It consumes events and mails the customer: welcome (user.registered), order confirmed (the order is
paid), shipped with tracking, delivered, cancelled, refunded. Each mail is rendered from Jinja2 files
in ``templates/`` (a plain-text and an HTML part; the HTML autoescaped; the shop's name and address from
settings) inside the event's inbox transaction and stored as a delivery row, unique per (event,
template): a redelivered event makes no second mail. A sender loop sends due deliveries over SMTP and
records each attempt (status, attempts, last error); a server that is down or says "try later" is
retried with back-off for as long as it takes, a refusal a few times and then the delivery is failed.
Admins list deliveries at ``GET /admin/emails``.

Where the address comes from: events about orders carry the customer's id, not their address. This
part asks auth (``GET /internal/users/{id}``) when it handles the event, rather than keeping a copy
of the users from ``user.*`` events: auth publishes no event when a name changes or an account is
blocked, a copy would miss every customer who registered before this part first ran, and the
addresses stay in one database. Auth being down delays the event (an outage spends no attempt);
it loses nothing. ``user.registered`` carries its own address and name.

Password-reset codes are not mailed here: a secret never travels on the bus, so auth mails them itself.

Webhooks are the second channel (``webhooks.py``, ``webhook_sender.py``, ``webhook_security.py``):
integrators' endpoints get every event their routing-key patterns match, signed, at least once. That
is why this part's queue is bound to ``#``: it sees every event, and forwards the envelope unread.
"""
