"""API keys in auth: issued by admins and shown once, traded for a short-lived token with their
scopes, revoked at once (the traded token too)."""

from __future__ import annotations

import jwt
from auth_testkit import bearer, sign_up

from libs.common.testing import assert_problem


def internal(settings) -> dict[str, str]:
    return {"X-Internal-Token": settings.internal_api_token.get_secret_value()}


async def test_an_admin_issues_a_key_shown_once_and_listed_by_its_prefix(client, admin_tokens) -> None:
    admin = bearer(admin_tokens)
    resp = await client.post(
        "/admin/api-keys", headers=admin, json={"name": "ERP", "scopes": ["orders:read", "catalog:write"]}
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["key"].startswith(made["prefix"] + "_") and made["prefix"].startswith("sk_")
    assert made["scopes"] == ["catalog:write", "orders:read"] and made["last_used_at"] is None
    assert made["created_by"] == admin_tokens["user_id"]
    listed = (await client.get("/admin/api-keys", headers=admin)).json()
    mine = [k for k in listed["items"] if k["id"] == made["id"]]
    assert mine and "key" not in mine[0] and made["key"] not in str(listed)


async def test_unknown_scopes_or_no_scope_are_422_naming_the_field(client, admin_tokens) -> None:
    admin = bearer(admin_tokens)
    for scopes in (["orders:read", "keys:write"], [], ["customers:write"]):
        resp = await client.post("/admin/api-keys", headers=admin, json={"name": "x", "scopes": scopes})
        assert assert_problem(resp, 422)["errors"][0]["field"].startswith("scopes")


async def test_guests_and_customers_cannot_issue_list_or_revoke_keys(client, admin_tokens) -> None:
    customer = bearer(await sign_up(client))
    made = (
        await client.post(
            "/admin/api-keys", headers=bearer(admin_tokens), json={"name": "x", "scopes": ["catalog:read"]}
        )
    ).json()
    for headers, status in (({}, 401), (customer, 403)):
        assert_problem(
            await client.post(
                "/admin/api-keys", headers=headers, json={"name": "y", "scopes": ["catalog:read"]}
            ),
            status,
        )
        assert_problem(await client.get("/admin/api-keys", headers=headers), status)
        assert_problem(await client.delete(f"/admin/api-keys/{made['id']}", headers=headers), status)


async def test_a_key_is_traded_for_a_scoped_token_and_revoking_it_ends_both_at_once(
    client, admin_tokens, auth_settings
) -> None:
    admin = bearer(admin_tokens)
    made = (
        await client.post(
            "/admin/api-keys", headers=admin, json={"name": "Search", "scopes": ["catalog:read"]}
        )
    ).json()
    assert_problem(await client.post("/internal/api-keys/exchange", json={"key": made["key"]}), 403)
    traded = await client.post(
        "/internal/api-keys/exchange", headers=internal(auth_settings), json={"key": made["key"]}
    )
    assert traded.status_code == 200, traded.text
    token = traded.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["sid"], claims["scp"], claims["role"]) == (
        made["id"],
        made["id"],
        "catalog:read",
        "admin",
    )
    assert claims["exp"] - claims["iat"] == auth_settings.api_key_token_ttl
    as_key = {"Authorization": f"Bearer {token}"}
    refused = await client.post(
        "/admin/api-keys", headers=as_key, json={"name": "more", "scopes": ["orders:read"]}
    )
    assert_problem(refused, 403)  # a key cannot issue itself a broader one
    listed = (await client.get("/admin/api-keys", headers=admin)).json()["items"]
    assert next(k for k in listed if k["id"] == made["id"])["last_used_at"] is not None

    assert (await client.get("/admin/users", headers=as_key)).status_code == 200
    revoked = await client.delete(f"/admin/api-keys/{made['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(await client.get("/admin/users", headers=as_key), 401)
    again = await client.post(
        "/internal/api-keys/exchange", headers=internal(auth_settings), json={"key": made["key"]}
    )
    assert_problem(again, 401)


async def test_a_wrong_or_malformed_key_is_refused_without_saying_which_part_was_wrong(
    client, admin_tokens, auth_settings
) -> None:
    made = (
        await client.post(
            "/admin/api-keys", headers=bearer(admin_tokens), json={"name": "x", "scopes": ["catalog:read"]}
        )
    ).json()
    forged = made["key"][:-4] + ("AAAA" if not made["key"].endswith("AAAA") else "BBBB")
    for key in (forged, "sk_nothing", "not-a-key", made["prefix"]):
        resp = await client.post(
            "/internal/api-keys/exchange", headers=internal(auth_settings), json={"key": key}
        )
        assert assert_problem(resp, 401)["detail"] == "This is not a valid API key."


async def test_admins_read_the_scopes_a_key_may_have_and_others_cannot(client, admin_tokens) -> None:
    listed = await client.get("/admin/api-keys/scopes", headers=bearer(admin_tokens))
    assert listed.status_code == 200, listed.text
    assert "orders:read" in listed.json() and "catalog:write" in listed.json()
    customer = bearer(await sign_up(client))
    for headers, status in (({}, 401), (customer, 403)):
        assert_problem(await client.get("/admin/api-keys/scopes", headers=headers), status)
