"""Every Socket.IO event of the realtime service, for the AsyncAPI document (services/asyncapi.py).

Built from the tables the server itself runs on (``ROUTES`` of the notifications,
``COMMANDS`` of the admin commands), so a new notification or command shows up in the
document without anyone remembering to add it.
"""

from __future__ import annotations

from libs.asyncapi import SocketContract, SocketMessage
from services.realtime.commands import COMMANDS
from services.realtime.notifications import ROUTES
from services.realtime.schemas import (
    AuthRefresh,
    ConnectAuth,
    Done,
    Notification,
    Refused,
    Resume,
    Resumed,
    Resync,
    RoomsJoined,
    SessionEnded,
    TokenRefreshed,
)

AUDIENCES = {
    "public": "everyone (room public)",
    "admins": "admins (room admins)",
    "owner": "admins and the owning user (rooms admins and user:<id>)",
}


def socket_contract(path: str = "/socket.io/") -> SocketContract:
    """The endpoint, the notifications it pushes and the commands it answers."""
    messages = [
        SocketMessage(
            name=name,
            sender="server",
            payload=Notification,
            relays=event,
            summary=f"The domain event {event}, numbered in its room.",
            audience=AUDIENCES[audience],
        )
        for event, (name, audience) in ROUTES.items()
    ]
    messages += [
        SocketMessage(
            name="session:ended",
            sender="server",
            payload=SessionEnded,
            summary="The session was revoked, its token expired, or the connection sent more messages "
            "than it may (see the description); the server disconnects next.",
            audience="that connection",
        ),
        SocketMessage(
            name="resync",
            sender="server",
            payload=Resync,
            summary="What was missed in a room is older than the replay buffer or larger than one "
            "replay, or Redis lost what was not yet delivered: refetch over REST.",
            audience="that connection",
        ),
        SocketMessage(
            name="rooms:joined",
            sender="server",
            payload=RoomsJoined,
            summary="Right after connecting: the number each room stood at when this connection joined it, "
            "for the rooms the CONNECT's last_seq did not name, so a client can resume them after a drop.",
            audience="that connection",
        ),
        SocketMessage(
            name="connect",
            sender="client",
            payload=ConnectAuth,
            summary="The auth object of the Socket.IO CONNECT packet (guests send none).",
        ),
        SocketMessage(
            name="resume",
            sender="client",
            payload=Resume,
            ack=(Resumed, Refused),
            summary="Replay what each room had after the given numbers, in order, before anything new; "
            "once per room and connection, at most replay_limit (500) notifications.",
        ),
        SocketMessage(
            name="auth:refresh",
            sender="client",
            payload=AuthRefresh,
            ack=(TokenRefreshed, Refused),
            summary="Swap in a fresh access token of the same user without reconnecting.",
        ),
    ]
    messages += [
        SocketMessage(
            name=name,
            sender="client",
            payload=model,
            ack=(Done, Refused),
            summary=f"Admins only: performs {method} {template} on {upstream.removesuffix('_url')} "
            "with the admin's token, the payload as its body; the service's answer or "
            "problem (errors included) is the ack. A repeated request_id is performed "
            "once; reused with another payload it is refused (422).",
        )
        for name, (model, method, template, upstream) in COMMANDS.items()
    ]
    return SocketContract(
        path=path,
        messages=tuple(messages),
        description="python-socketio at /socket.io/ (long-polling or WebSocket), also through the gateway. "
        "Every connection is in the room public; signed-in users also in user:<id>; admins also "
        "in admins. Every acknowledgement is {ok: true, data} or {ok: false, error: problem}. "
        "Guests hear only what the public REST API shows: an inactive product's news go to "
        "admins only, and when a product is withdrawn the public room hears just "
        "{id, is_active: false, version}. Sequence numbers grow per room and never go back (they may jump). "
        "A connection may send 20 messages a second (bursts of 60), a user 40 (120) over "
        "its connections; past that it gets session:ended and is disconnected.",
    )
