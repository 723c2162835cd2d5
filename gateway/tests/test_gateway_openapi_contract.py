"""The merged OpenAPI document of the real services, as an SDK generator reads it (no stack started)."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.routes import SERVICES, RouteTable
from services.openapi import document

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def test_operation_ids_are_sdk_method_names_unique_across_services(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", i) for i in ids), ids
    by_route = {(m, p): op["operationId"] for m, p, op in operations(doc)}
    assert by_route["post", "/orders"] == "placeOrder"
    assert by_route["post", "/payment/checkout"] == "checkout"
    assert by_route["put", "/cart/{item_id}"] == "setCartItemQuantity"


def test_the_problem_schema_is_defined_once_and_referred_to(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]
    text = json.dumps(doc)
    assert text.count('"required": ["type", "title", "status", "detail"]') == 1
    for method, path, op in operations(doc):
        refusal = op["responses"]["4XX"]["content"]["application/problem+json"]["schema"]
        assert refusal == {"$ref": "#/components/schemas/Problem"}, (method, path)


def test_security_says_what_the_gateway_asks_for(doc: dict[str, Any]) -> None:
    table = RouteTable()
    for method, path, op in operations(doc):
        route = table.match(method.upper(), re.sub(r"\{[^}]+\}", "x", path)).route
        assert route is not None, (method, path)
        security = op.get("security")
        if route.access == "P":
            assert security is None or {} in security, (method, path, security)
        else:
            assert security and {} not in security, (method, path, security)
    # a public product page that also reads an optional token (admins see hidden products)
    assert doc["paths"]["/products/{id_or_slug}"]["get"]["security"] == [{}, {"HTTPBearer": []}]


def test_an_insufficient_stock_409_documents_its_short_lines(doc: dict[str, Any]) -> None:
    schema = doc["paths"]["/orders"]["post"]["responses"]["409"]["content"]["application/problem+json"][
        "schema"
    ]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    short = schema["allOf"][1]["properties"]["short"]["items"]
    assert set(short["required"]) == {"product_id", "requested", "available"}


def test_request_schemas_state_what_the_services_enforce(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("ForgotIn", "VerifyOtpIn", "LoginIn", "RegisterIn"):
        assert schemas[name]["properties"]["email"]["format"] == "email", name
    for name, field in (
        ("RegisterIn", "password"),
        ("ResetIn", "new_password"),
        ("ChangePasswordIn", "new_password"),
    ):
        assert schemas[name]["properties"][field]["minLength"] == 8, name
    # a body model that refuses unknown fields says so; one that ignores them does not
    checked = 0
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.schemas")
        for model in vars(module).values():
            if not (
                isinstance(model, type)
                and issubclass(model, BaseModel)
                and model.__module__ == module.__name__
                and model.__name__ in schemas
            ):
                continue
            forbids = model.model_config.get("extra") == "forbid"
            assert (schemas[model.__name__].get("additionalProperties") is False) == forbids, (service, model)
            checked += 1
    assert checked > 30
