"""Realtime: Socket.IO notifications from domain events, and admin commands over the socket.

Decisions:
- It owns nothing durable, so it has no database: a redelivered event is recognised by
  its id in Redis (SET NX, one day), and each room's notifications carry a sequence
  number (Redis INCR) and are kept in a capped Redis stream, so a client that comes
  back with ``auth.last_seq`` gets what it missed, in order (or ``resync`` when the
  gap is older than the buffer).
- Admin commands are performed by calling the owning service's admin REST route with
  the admin's own token, so the rules live in one place; the ack carries the
  service's problem unchanged.
- Rooms are shared between instances through python-socketio's Redis manager; only
  the instance that consumed an event emits it, so every client gets it once.
"""
