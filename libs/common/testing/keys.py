"""A test signing key pair published through a real JWKS endpoint on loopback.

Services verify test tokens exactly as they verify the auth service's: by fetching
the JWKS over HTTP, so the verification path under test is the production one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class TestKeys:
    """Mints tokens the way the auth service does; ``jwks_url`` serves the public keys."""

    __test__ = False

    def __init__(self, *, issuer: str = "shop-auth", audience: str = "shop") -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self.add_key()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig", alg="RS256")
            out.append(jwk)
        return {"keys": out}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(outer.jwks()).encode()
                self.send_response(200 if self.path.startswith("/.well-known/jwks.json") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        return Handler

    def mint(
        self,
        *,
        user_id: uuid.UUID | str | None = None,
        role: str = "user",
        sid: str | None = None,
        expires_in: int = 900,
        issued_at: int | None = None,
        kid: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        drop: tuple[str, ...] = (),
        **extra: Any,
    ) -> str:
        """An RS256 access token with the auth service's claims; override any to forge a bad one."""
        now = int(time.time()) if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "sub": str(user_id or uuid.uuid4()),
            "role": role,
            "sid": sid or uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + expires_in,
            "iss": issuer or self.issuer,
            "aud": audience or self.audience,
            **extra,
        }
        for name in drop:
            claims.pop(name, None)
        kid = kid or self.kid
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def bearer(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(**kw)}"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
