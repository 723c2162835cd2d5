"""Throttles on login, forgot-password and verify-otp answer 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest
from auth_testkit import PASSWORD, new_email, sign_up
from starlette.requests import Request

from libs.common.testing import assert_problem
from services.auth.settings import AuthSettings
from services.auth.throttle import client_ip


def assert_throttled(resp: httpx.Response, *, at_most: int) -> None:
    assert_problem(resp, 429)
    assert 1 <= int(resp.headers["retry-after"]) <= at_most


async def test_five_failed_logins_lock_the_account_for_a_while(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    for _ in range(5):
        assert_problem(await client.post("/auth/login", json={"email": address, "password": "Wrong-pass-1"}), 401)
    locked = await client.post("/auth/login", json={"email": address, "password": PASSWORD})
    assert_throttled(locked, at_most=900)
    # the lock is per account, not per caller: another address is refused too
    other_ip = await client.post("/auth/login", json={"email": address, "password": PASSWORD},
                                 headers={"X-Forwarded-For": "192.0.2.77"})
    assert_throttled(other_ip, at_most=900)


async def test_an_unknown_email_is_locked_the_same_way(client: httpx.AsyncClient) -> None:
    address = new_email()
    for _ in range(5):
        assert_problem(await client.post("/auth/login", json={"email": address, "password": "Wrong-pass-1"}), 401)
    assert_throttled(await client.post("/auth/login", json={"email": address, "password": "Wrong-pass-1"}),
                     at_most=900)


async def test_one_address_gets_a_limited_number_of_login_attempts(client: httpx.AsyncClient,
                                                                   auth_settings: AuthSettings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert AuthSettings.model_fields["login_attempts_per_ip"].default == 30  # a shared NAT gets room
    monkeypatch.setattr(auth_settings, "login_attempts_per_ip", 4)
    address = new_email()
    await sign_up(client, email_=address)
    for _ in range(4):
        assert (await client.post("/auth/login", json={"email": address, "password": PASSWORD})).status_code == 200
    assert_throttled(await client.post("/auth/login", json={"email": address, "password": PASSWORD}), at_most=60)
    other = await client.post("/auth/login", json={"email": address, "password": PASSWORD},
                              headers={"X-Forwarded-For": "192.0.2.99"})
    assert other.status_code == 200  # another address is not affected


async def test_forgot_password_is_throttled_per_email(client: httpx.AsyncClient) -> None:
    address = new_email()
    for _ in range(5):
        assert (await client.post("/auth/forgot-password", json={"email": address})).status_code == 202
    assert_throttled(await client.post("/auth/forgot-password", json={"email": address},
                                       headers={"X-Forwarded-For": "192.0.2.78"}), at_most=900)


async def test_verify_otp_is_throttled_per_address(client: httpx.AsyncClient, auth_settings: AuthSettings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_settings, "verify_otp_per_ip", 3)
    for _ in range(3):
        assert_problem(await client.post("/auth/verify-otp", json={"email": new_email(), "otp": "123456"}), 400)
    assert_throttled(await client.post("/auth/verify-otp", json={"email": new_email(), "otp": "123456"}),
                     at_most=900)


def request_from(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 5000), "headers": headers, "method": "GET", "path": "/"})


def test_forwarded_for_counts_only_when_a_trusted_proxy_sent_it() -> None:
    trusted = ["127.0.0.1"]
    assert client_ip(request_from("203.0.113.9", "198.51.100.1"), trusted) == "203.0.113.9"
    assert client_ip(request_from("127.0.0.1", "198.51.100.1"), trusted) == "198.51.100.1"
    assert client_ip(request_from("127.0.0.1", None), trusted) == "127.0.0.1"
    # a client-supplied first hop cannot pick the address the proxy saw
    assert client_ip(request_from("127.0.0.1", "6.6.6.6, 198.51.100.1"), trusted) == "198.51.100.1"
