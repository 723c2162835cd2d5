"""Sign-up and sign-in: wire shapes, uniqueness, password policy, no account enumeration."""

from __future__ import annotations

import time

import httpx
import jwt
from auth_testkit import PASSWORD, bearer, new_email, sign_in, sign_up

from libs.common.testing import assert_problem


async def test_register_returns_the_user_and_working_tokens(client: httpx.AsyncClient) -> None:
    address = new_email()
    body = await sign_up(client, email_=address.upper(), name="Grace")
    assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["refresh_token"]
    user = body["user"]
    assert user["email"] == address and user["name"] == "Grace" and user["role"] == "user"
    assert user["is_active"] is True and user["email_verified"] is False and user["addresses"] == []
    assert {"id", "phone", "created_at"} <= user.keys() and "password_hash" not in user
    me = await client.get("/users/me", headers=bearer(body))
    assert me.status_code == 200 and me.json()["id"] == user["id"]


async def test_access_token_has_the_documented_claims_and_kid(client: httpx.AsyncClient) -> None:
    body = await sign_up(client)
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k and "p" not in k for k in jwks["keys"])  # public halves only
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).key
    claims = jwt.decode(body["access_token"], key, algorithms=["RS256"], audience="shop", issuer="shop-auth")
    assert claims["sub"] == body["user"]["id"] and claims["role"] == "user"
    assert claims["sid"] and claims["jti"] and claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 5


async def test_duplicate_email_is_a_conflict_whatever_its_case(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    for variant in (address, address.upper(), f"  {address.capitalize()} "):
        resp = await client.post("/auth/register", json={"email": variant, "password": PASSWORD, "name": "X"})
        assert "already exists" in assert_problem(resp, 409)["detail"]


async def test_weak_passwords_are_refused_with_a_clear_message(client: httpx.AsyncClient) -> None:
    address = new_email()
    for weak, hint in (("Ab1!", "at least 8"), ("abcdefghij", "two kinds"), ("1234567890", "two kinds")):
        resp = await client.post("/auth/register", json={"email": address, "password": weak, "name": "X"})
        body = assert_problem(resp, 422)
        assert hint in body["detail"] and body["errors"][0]["field"] == "password"
    resp = await client.post("/auth/login", json={"email": address, "password": "abcdefgh1"})
    assert_problem(resp, 401)  # nothing was created


async def test_invalid_email_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/auth/register", json={"email": "not-an-email", "password": PASSWORD, "name": "X"}
    )
    assert assert_problem(resp, 422)["errors"][0]["field"] == "email"


async def test_login_is_case_insensitive_on_email(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    tokens = await sign_in(client, address.upper())
    assert (await client.get("/users/me", headers=bearer(tokens))).json()["email"] == address


async def test_login_answers_with_the_user_as_register_does(client: httpx.AsyncClient) -> None:
    address = new_email()
    registered = await client.post(
        "/auth/register", json={"email": address, "password": PASSWORD, "name": "Ann"}
    )
    login = await client.post("/auth/login", json={"email": address, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    assert set(body) == set(registered.json())
    assert body["user"] == registered.json()["user"] and body["user"]["email"] == address
    assert body["access_token"] and body["refresh_token"] and body["token_type"] == "bearer"


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    wrong = await client.post("/auth/login", json={"email": address, "password": "Wrong-password-1"})
    unknown = await client.post("/auth/login", json={"email": new_email(), "password": "Wrong-password-1"})
    a, b = assert_problem(wrong, 401), assert_problem(unknown, 401)
    a.pop("request_id"), b.pop("request_id")
    assert a == b
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


async def test_unknown_email_costs_a_password_hash_too(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)

    async def timed(email_: str) -> float:
        start = time.perf_counter()
        await client.post("/auth/login", json={"email": email_, "password": "Wrong-password-1"})
        return time.perf_counter() - start

    known = min([await timed(address) for _ in range(3)])
    unknown = min([await timed(new_email()) for _ in range(3)])
    # same work either way: an unknown email is not answered markedly faster
    assert unknown > known * 0.5, (known, unknown)
