"""Realtime: Socket.IO notifications from domain events, and admin commands over the socket.

Decisions:
- It owns nothing durable, so it has no database: a redelivered event is recognised by
  its id in Redis (marked in the same Lua script that stores it), and each room's
  notifications carry a sequence number and are kept in a capped Redis stream, so a
  client that comes back with ``auth.last_seq`` gets what it missed, in order (or
  ``resync`` when the gap is older than the buffer or larger than one replay).
- Rooms are shared between instances through a Redis stream every instance reads (the
  feed), and each instance emits to its own connections with python-socketio's public
  API; python-socketio's message-queue manager is not used (section 6 of DESIGN.md
  names it; its delivery depended on overriding private methods). If Redis comes back
  empty, sequences jump forward (never back) and every connection gets ``resync``.
- Guests hear only what the public REST API shows: an inactive product's events (and
  its stock) go to admins only; for a stock change of a product it has not seen,
  realtime asks catalog's public route.
- Admin commands are performed by calling the owning service's admin REST route with
  the admin's own token, the payload as its body, so the rules live in one place; the
  ack carries the service's answer or problem unchanged.
- Each connection and each user may send a bounded number of messages a second
  (settings ``message_*``); past it the connection gets ``session:ended`` and is closed.
"""
