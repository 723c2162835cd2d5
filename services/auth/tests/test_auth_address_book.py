"""The address book: one shape, one default, only the owner's, bounded; and the profile's old data."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from auth_testkit import bearer, sign_up

from libs.common.db import Database, _alembic_lock, alembic_config, create_database, migrate
from libs.common.testing import Infra, assert_problem, settings_for
from services.auth.app import MIGRATIONS
from services.auth.settings import AuthSettings

HOME = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "pt",
    "phone": "+351 900 000 000",
}
WORK = {**HOME, "line1": "9 Rua Augusta", "region": "Lisboa", "country": "PT"}


async def book(client: httpx.AsyncClient, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await client.get("/users/me/addresses", headers=bearer(tokens))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def add(client: httpx.AsyncClient, tokens: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/users/me/addresses", headers=bearer(tokens), json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_the_first_address_is_the_default_and_moving_the_default_leaves_one(
    client: httpx.AsyncClient,
) -> None:
    tokens = await sign_up(client)
    home = await add(client, tokens, HOME)
    assert home["is_default"] is True and home["country"] == "PT" and home["region"] is None
    work = await add(client, tokens, WORK)
    assert work["is_default"] is False
    moved = await client.put(
        f"/users/me/addresses/{work['id']}", headers=bearer(tokens), json={**WORK, "is_default": True}
    )
    assert moved.status_code == 200, moved.text
    assert {a["id"]: a["is_default"] for a in await book(client, tokens)} == {
        home["id"]: False,
        work["id"]: True,
    }
    # the profile shows the same book
    me = (await client.get("/users/me", headers=bearer(tokens))).json()
    assert [a["id"] for a in me["addresses"]] == [home["id"], work["id"]]


async def test_deleting_the_default_promotes_another_and_the_last_leaves_none(
    client: httpx.AsyncClient,
) -> None:
    tokens = await sign_up(client)
    home, work = await add(client, tokens, HOME), await add(client, tokens, WORK)
    edited = await client.put(
        f"/users/me/addresses/{home['id']}", headers=bearer(tokens), json={**HOME, "line2": "3rd floor"}
    )
    assert edited.json()["line2"] == "3rd floor" and edited.json()["is_default"] is True
    assert (
        await client.delete(f"/users/me/addresses/{home['id']}", headers=bearer(tokens))
    ).status_code == 204
    assert [(a["id"], a["is_default"]) for a in await book(client, tokens)] == [(work["id"], True)]
    assert (
        await client.delete(f"/users/me/addresses/{work['id']}", headers=bearer(tokens))
    ).status_code == 204
    assert await book(client, tokens) == []
    assert_problem(await client.delete(f"/users/me/addresses/{work['id']}", headers=bearer(tokens)), 404)


async def test_a_guest_gets_401_and_another_users_address_is_a_404(client: httpx.AsyncClient) -> None:
    owner, other = await sign_up(client), await sign_up(client)
    mine = await add(client, owner, HOME)
    assert_problem(await client.get("/users/me/addresses"), 401)
    assert_problem(await client.post("/users/me/addresses", json=HOME), 401)
    url = f"/users/me/addresses/{mine['id']}"
    assert_problem(await client.put(url, headers=bearer(other), json=WORK), 404)
    assert_problem(await client.delete(url, headers=bearer(other)), 404)
    assert [a["line1"] for a in await book(client, owner)] == [HOME["line1"]]


async def test_bad_input_is_a_422_naming_the_field_and_saves_nothing(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    for body, field in (
        ({**HOME, "country": "XX"}, "country"),
        ({**HOME, "country": "Portugal"}, "country"),
        ({k: v for k, v in HOME.items() if k != "city"}, "city"),
        ({**HOME, "label": "home"}, "label"),
    ):
        resp = await client.post("/users/me/addresses", headers=bearer(tokens), json=body)
        assert_problem(resp, 422)
        assert field in resp.text, resp.text
    assert await book(client, tokens) == []


async def test_the_book_holds_at_most_20_addresses(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    await asyncio.gather(*(add(client, tokens, {**HOME, "line1": f"{i} Main St"}) for i in range(20)))
    assert_problem(await client.post("/users/me/addresses", headers=bearer(tokens), json=HOME), 409)
    saved = await book(client, tokens)
    assert len(saved) == 20 and sum(a["is_default"] for a in saved) == 1


async def test_the_profile_put_replaces_the_book_in_the_same_shape(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    await add(client, tokens, HOME)
    resp = await client.put(
        "/users/me", headers=bearer(tokens), json={"addresses": [HOME, {**WORK, "is_default": True}]}
    )
    assert resp.status_code == 200, resp.text
    assert [(a["line1"], a["is_default"]) for a in await book(client, tokens)] == [
        (HOME["line1"], False),
        (WORK["line1"], True),
    ]
    assert_problem(
        await client.put(
            "/users/me", headers=bearer(tokens), json={"addresses": [{**HOME, "country": "ZZ"}]}
        ),
        422,
    )


async def test_the_internal_route_needs_the_credential_and_the_owner(
    client: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    owner, other = await sign_up(client), await sign_up(client)
    mine = await add(client, owner, HOME)
    url = f"/internal/users/{owner['user']['id']}/addresses/{mine['id']}"
    token = {"X-Internal-Token": auth_settings.internal_api_token.get_secret_value()}
    for headers in ({}, {"X-Internal-Token": "wrong"}, bearer(owner)):
        assert_problem(await client.get(url, headers=headers), 403)
    found = await client.get(url, headers=token)
    assert found.status_code == 200 and found.json()["line1"] == HOME["line1"]
    elsewhere = f"/internal/users/{other['user']['id']}/addresses/{mine['id']}"
    assert_problem(await client.get(elsewhere, headers=token), 404)


async def test_the_internal_account_lookup_needs_the_credential(
    client: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    """Notifications addresses a customer's mail from this; nobody else may ask."""
    owner = await sign_up(client)
    url = f"/internal/users/{owner['user']['id']}"
    token = {"X-Internal-Token": auth_settings.internal_api_token.get_secret_value()}
    for headers in ({}, {"X-Internal-Token": "wrong"}, bearer(owner)):
        assert_problem(await client.get(url, headers=headers), 403)
    found = await client.get(url, headers=token)
    assert found.status_code == 200, found.text
    assert (found.json()["email"], found.json()["name"]) == (owner["user"]["email"], owner["user"]["name"])
    assert_problem(await client.get(f"/internal/users/{uuid.uuid4()}", headers=token), 404)


OLD_PROFILE = [
    {"label": "home", "line1": "1 Main St", "city": "Lisbon", "postal_code": "1000-001", "country": "pt"},
    {
        "full_name": "Ada L.",
        "line1": "2 Side St",
        "line2": "Flat 4",
        "city": "Porto",
        "postal_code": "4000-001",
        "country": "XX",
        "phone": "+351 1",
        "is_default": True,
    },
    "somewhere by the sea",
]


@pytest.mark.parametrize("entries", [OLD_PROFILE])
async def test_first_wave_profile_addresses_are_converted_without_loss(
    infra: Infra, entries: list[Any]
) -> None:
    settings = settings_for(AuthSettings, infra, db_prefix=f"{infra.db_prefix}addrmig{uuid.uuid4().hex[:6]}_")
    url = settings.db_url
    await create_database(url)

    def to_initial() -> None:
        with _alembic_lock:
            command.upgrade(alembic_config(url, MIGRATIONS), "4a9c06468e01")

    await asyncio.to_thread(to_initial)
    db = Database(url, pool_size=1)
    users = sa.table(
        "users",
        sa.column("id", sa.UUID()),
        sa.column("email", sa.String()),
        sa.column("name", sa.String()),
        sa.column("password_hash", sa.Text()),
        sa.column("addresses", sa.dialects.postgresql.JSONB()),
    )
    user_id = uuid.uuid4()
    try:
        async with db.session() as session, session.begin():
            await session.execute(
                users.insert().values(
                    id=user_id,
                    email="old@example.com",
                    name="Ada Lovelace",
                    password_hash="x",
                    addresses=entries,
                )
            )
        await migrate(url, MIGRATIONS)
        async with db.session() as session:
            book = (
                await session.execute(sa.select(users.c.addresses).where(users.c.id == user_id))
            ).scalar_one()
    finally:
        await db.dispose()
    home, flat, text = book
    assert home["name"] == "Ada Lovelace" and home["country"] == "PT" and home["line2"] == "label: home"
    assert flat["name"] == "Ada L." and flat["line2"] == "Flat 4" and flat["country"] == "XX"
    assert text["line1"] == "somewhere by the sea"
    assert [a["is_default"] for a in book] == [False, True, False]
    assert len({a["id"] for a in book}) == 3 and all(uuid.UUID(a["id"]) for a in book)
