"""Profile without mass assignment; admin listing, blocking and role changes, and who may call them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from auth_testkit import PASSWORD, bearer, new_email, sign_in, sign_up

from libs.common.testing import assert_problem

ADDRESS = {
    "name": "Ada B.",
    "line1": "1 Main St",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "PT",
}


async def test_user_updates_name_phone_and_addresses(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    resp = await client.put(
        "/users/me",
        headers=bearer(tokens),
        json={"name": "Ada B.", "phone": "+351 900 000 000", "addresses": [ADDRESS]},
    )
    assert resp.status_code == 200, resp.text
    me = (await client.get("/users/me", headers=bearer(tokens))).json()
    assert me["name"] == "Ada B." and me["phone"] == "+351 900 000 000"
    assert me["addresses"][0]["city"] == "Lisbon" and me["addresses"][0]["is_default"] is True
    partial = await client.put("/users/me", headers=bearer(tokens), json={"phone": None})
    assert partial.json()["name"] == "Ada B." and partial.json()["phone"] is None


async def test_put_me_with_role_admin_leaves_the_role_unchanged(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    user_id = tokens["user"]["id"]
    resp = await client.put(
        "/users/me",
        headers=bearer(tokens),
        json={
            "name": "Mallory",
            "role": "admin",
            "id": str(uuid.uuid4()),
            "email": "boss@example.com",
            "email_verified": True,
            "is_active": True,
        },
    )
    assert resp.status_code == 200, resp.text
    me = (await client.get("/users/me", headers=bearer(tokens))).json()
    assert me["role"] == "user" and me["id"] == user_id and me["email"] == tokens["user"]["email"]
    assert me["email_verified"] is False and me["name"] == "Mallory"
    assert_problem(await client.get("/admin/users", headers=bearer(await sign_in(client, me["email"]))), 403)


async def test_bad_profile_input_is_refused_and_changes_nothing(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client, name="Kept")
    bad = await client.put(
        "/users/me", headers=bearer(tokens), json={"name": "   ", "addresses": [{"city": "X"}]}
    )
    assert_problem(bad, 422)
    assert (await client.get("/users/me", headers=bearer(tokens))).json()["name"] == "Kept"


async def test_guest_cannot_read_or_change_a_profile(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/users/me"), 401)
    assert_problem(await client.put("/users/me", json={"name": "x"}), 401)


async def test_a_user_calling_admin_routes_gets_403_and_a_guest_401(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    assert_problem(await client.get("/admin/users", headers=bearer(tokens)), 403)
    assert_problem(
        await client.patch(
            f"/admin/users/{tokens['user']['id']}", headers=bearer(tokens), json={"role": "admin"}
        ),
        403,
    )
    assert_problem(await client.get("/admin/users"), 401)
    assert_problem(await client.patch(f"/admin/users/{tokens['user']['id']}", json={"role": "admin"}), 401)


async def test_admin_lists_users_with_search_filters_and_pages(
    client: httpx.AsyncClient, admin_tokens: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        await sign_up(client, email_=f"{tag}-{i}@example.com", name=f"Person {i}")
    await sign_up(client, name=f"Zed {tag}")
    headers = bearer(admin_tokens)
    page = (await client.get("/admin/users", headers=headers, params={"q": tag, "page_size": 2})).json()
    assert page["total"] == 4 and page["page"] == 1 and page["page_size"] == 2 and len(page["items"]) == 2
    second = (
        await client.get("/admin/users", headers=headers, params={"q": tag, "page_size": 2, "page": 2})
    ).json()
    assert len(second["items"]) == 2
    assert not {u["id"] for u in page["items"]} & {u["id"] for u in second["items"]}
    by_name = (await client.get("/admin/users", headers=headers, params={"q": f"zed {tag}"})).json()
    assert by_name["total"] == 1
    admins = (
        await client.get("/admin/users", headers=headers, params={"role": "admin", "page_size": 100})
    ).json()
    assert admins["items"] and all(u["role"] == "admin" for u in admins["items"])
    wildcard = (await client.get("/admin/users", headers=headers, params={"q": "%"})).json()
    assert wildcard["total"] == 0  # LIKE wildcards are searched literally
    assert_problem(await client.get("/admin/users", headers=headers, params={"page_size": 101}), 422)
    assert_problem(await client.get("/admin/users", headers=headers, params={"role": "root"}), 422)
    # the customers of a page of orders, by id, in one call
    wanted = sorted(u["id"] for u in [page["items"][0], second["items"][1]])
    named = (await client.get("/admin/users", headers=headers, params={"id": wanted})).json()
    assert sorted(u["id"] for u in named["items"]) == wanted and named["total"] == 2
    nobody = (await client.get("/admin/users", headers=headers, params={"id": str(uuid.uuid4())})).json()
    assert nobody["total"] == 0
    assert_problem(await client.get("/admin/users", headers=headers, params={"id": "not-an-id"}), 422)


async def test_blocked_user_cannot_sign_in_and_their_tokens_stop_working(
    client: httpx.AsyncClient, admin_tokens: dict[str, Any]
) -> None:
    address = new_email()
    tokens = await sign_up(client, email_=address)
    user_id = tokens["user"]["id"]
    resp = await client.patch(
        f"/admin/users/{user_id}", headers=bearer(admin_tokens), json={"is_active": False}
    )
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    assert_problem(await client.get("/users/me", headers=bearer(tokens)), 401)
    assert_problem(await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    assert (
        "blocked"
        in assert_problem(
            await client.post("/auth/login", json={"email": address, "password": PASSWORD}), 403
        )["detail"]
    )
    blocked = (
        await client.get(
            "/admin/users", headers=bearer(admin_tokens), params={"q": address, "is_active": "false"}
        )
    ).json()
    assert [u["id"] for u in blocked["items"]] == [user_id]
    await client.patch(f"/admin/users/{user_id}", headers=bearer(admin_tokens), json={"is_active": True})
    await sign_in(client, address)


async def test_role_change_ends_sessions_and_the_next_sign_in_carries_the_new_role(
    client: httpx.AsyncClient, admin_tokens: dict[str, Any]
) -> None:
    address = new_email()
    tokens = await sign_up(client, email_=address)
    resp = await client.patch(
        f"/admin/users/{tokens['user']['id']}", headers=bearer(admin_tokens), json={"role": "admin"}
    )
    assert resp.json()["role"] == "admin"
    assert_problem(await client.get("/users/me", headers=bearer(tokens)), 401)
    promoted = await sign_in(client, address)
    assert (await client.get("/admin/users", headers=bearer(promoted))).status_code == 200


async def test_an_admin_cannot_block_or_demote_themselves(
    client: httpx.AsyncClient, admin_tokens: dict[str, Any]
) -> None:
    me = admin_tokens["user_id"]
    for change in ({"is_active": False}, {"role": "user"}):
        assert_problem(
            await client.patch(f"/admin/users/{me}", headers=bearer(admin_tokens), json=change), 409
        )
    assert (await client.get("/admin/users", headers=bearer(admin_tokens))).status_code == 200


async def test_admin_patch_of_a_missing_user_or_bad_body_is_refused(
    client: httpx.AsyncClient, admin_tokens: dict[str, Any]
) -> None:
    headers = bearer(admin_tokens)
    assert_problem(
        await client.patch(f"/admin/users/{uuid.uuid4()}", headers=headers, json={"role": "user"}), 404
    )
    assert_problem(await client.patch("/admin/users/not-a-uuid", headers=headers, json={"role": "user"}), 422)
    other = await sign_up(client)
    assert_problem(
        await client.patch(
            f"/admin/users/{other['user']['id']}", headers=headers, json={"role": "superuser"}
        ),
        422,
    )
    assert_problem(
        await client.patch(
            f"/admin/users/{other['user']['id']}", headers=headers, json={"email": "x@example.com"}
        ),
        422,
    )
