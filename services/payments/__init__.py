"""Payments: a payable-order read-model, Stripe (or fake) PaymentIntents, one reconcile path, refunds.

Flow a frontend follows (after ``POST /orders`` answered 201 with status ``pending_payment``):

1. ``POST /payment/checkout {order_id}``. A 404 right after placing the order means payments has
   not yet received ``order.created``: retry after ~0.5 s. The answer is
   ``{payment_intent_id, client_secret, publishable_key, amount, currency, status, paid, ...}``;
   calling it again returns the same intent (safe to retry).
2. Confirm in the browser with Stripe.js: ``stripe.confirmPayment`` / ``confirmCardPayment``
   with ``client_secret`` (initialise Stripe.js with ``publishable_key``). Server-side and test
   flows instead send ``payment_method`` (e.g. ``pm_card_visa``) in step 1, which confirms at once.
3. ``POST /payment/verify {payment_intent_id}``: records the payment now instead of waiting for
   Stripe's webhook (either one is enough; both together still record one payment).
   ``paid: true`` -> show "Payment received"; the order turns ``paid`` moments later
   (``payment:succeeded`` / ``order:statusUpdated`` arrive on the socket).
   ``status: requires_payment_method`` with ``failure_reason`` -> show the reason and let the
   customer try another card (back to step 2 with the same client_secret, or step 1 with a new
   ``payment_method``); the order stays payable until the payment timeout.
4. A 409 from checkout means the order is no longer payable (cancelled, already moved on).

A paid order that is cancelled is refunded once (``payment.refunded``); a payment that succeeds
after its order was cancelled is refunded at once. Stripe webhooks go to ``POST /payment/webhook``
(events ``payment_intent.succeeded``, ``payment_intent.payment_failed``, ``charge.refunded``).
"""
