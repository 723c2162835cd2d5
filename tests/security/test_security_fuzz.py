"""Schema-driven fuzzing of the gateway's merged OpenAPI document (schemathesis).

Every operation the gateway publishes gets generated requests, valid and invalid, sent
through the gateway as a signed-in customer and as an admin. Whatever the input, the
answer must be one the document promises: no 5xx, a documented status code, the
documented content type and body schema, and every refusal an RFC 9457 problem
(``application/problem+json``) that leaks nothing internal.

Bounded: ``FUZZ_EXAMPLES`` generated cases per operation and role (10 by default, so
``make test`` stays quick, with a fixed seed so it is reproducible); ``make fuzz`` runs
this suite alone with many more and a fresh seed each time (``FUZZ_SEED=<n>`` replays a
run: a failure prints its seed).

Kept off the shared stack's toes: each role fuzzes with accounts made for it, from a
loopback address of its own (see ``conftest``), and the admin's mutations of a category,
product, order or user are confined to a sandbox it made (a generated id is swapped for
the sandbox's), so it never deletes or blocks what another suite relies on.
"""

from __future__ import annotations

import contextlib
import os
import random
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.external import ExternalStack
from tests.e2e.stack import Stack
from tests.security.conftest import Cast, loopback_client, make_admin, register, source_ip

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
# a fixed seed unless FUZZ_RANDOM asks for a fresh one; FUZZ_SEED replays a run (failures print it)
SEED = int(
    os.environ.get("FUZZ_SEED") or (random.randrange(2**32) if os.environ.get("FUZZ_RANDOM") else 20260901)
)
PROBLEM_JSON = "application/problem+json"
# httptools refuses request lines past ~64 KiB; e.g. a documented 10,000-character q of non-ASCII text
REQUEST_LINE_LIMIT = 60_000
# what a problem body must never carry: a stack trace, SQL or driver names
LEAKS = ("traceback", "sqlalchemy", "asyncpg", "psycopg", 'file "/', "[sql:")


@schemathesis.check
def refusals_are_problem_details(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx is ``application/problem+json`` with its own status and nothing internal."""
    if response.status_code < 400:
        return
    ctype = response.headers.get("content-type", [""])[0]
    assert ctype.startswith(PROBLEM_JSON), f"{response.status_code} answered as {ctype!r}, not {PROBLEM_JSON}"
    body = response.json()
    assert isinstance(body, dict) and body.get("status") == response.status_code, f"problem body {body!r}"
    assert body.get("title") and isinstance(body.get("detail"), str), f"problem body {body!r}"
    # a word the request itself carried may be echoed back ("No product 'asyncpg'"): not a leak
    request = response.request
    sent = f"{request.url} {request.body!r}".lower()
    leaked = [word for word in LEAKS if word in response.text.lower() and word not in sent]
    assert not leaked, f"the problem leaks internals ({leaked}): {response.text[:300]}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    refusals_are_problem_details,
]


class _FromSourceIp(HTTPAdapter):
    """Connections from ``SOURCE_IP``, so the fuzzer's throttles are its own."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class FuzzTarget:
    role: str
    token: str
    gateway: str
    # path parameter -> the sandbox id a generated id is replaced with (admin role only)
    confine: dict[str, str] = field(default_factory=dict)
    shared: bool = False  # an external stack's admin that others use too
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        if (source := source_ip(self.gateway)) is not None:
            self.session.mount("http://", _FromSourceIp(source))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def aim(self, case: schemathesis.Case) -> None:
        """Point a generated id of an admin mutation at the sandbox: data made here, nobody else's."""
        params = case.path_parameters or {}
        for name, value in params.items():
            if name in self.confine and _is_uuid(value):
                params[name] = self.confine[name]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# Shop-wide things the admin's fuzzing can add beside its sandbox. They are removed after it: a
# shipping zone it made for a country other suites ship to decided their quotes ("cannot ship to
# GB" in every journey run after this suite), a tax rate or an automatic promotion their totals.
ADDED_BY_FUZZING = ("/admin/shipping-zones", "/admin/tax-rates", "/admin/promotions", "/admin/webhooks")
STOCK_SETTINGS = "/admin/settings/stock"


async def _ids(http: httpx.AsyncClient, path: str, auth: dict[str, str]) -> set[str]:
    """Every id the admin list at ``path`` holds (a plain list, or pages of ``items``)."""
    ids: set[str] = set()
    for page in range(1, 1000):
        resp = await http.get(path, params={"page": page, "page_size": 100}, headers=auth)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text[:200]}"
        body = resp.json()
        items = body if isinstance(body, list) else body["items"]
        ids |= {item["id"] for item in items}
        if isinstance(body, list) or len(items) < 100:
            break
    return ids


@contextlib.asynccontextmanager
async def shop_wide_changes_undone(http: httpx.AsyncClient, token: str) -> AsyncIterator[None]:
    """What the fuzzing admin added to the shop at large goes; the low-stock threshold comes back."""
    auth = {"Authorization": f"Bearer {token}"}
    before = {path: await _ids(http, path, auth) for path in ADDED_BY_FUZZING}
    threshold = (await http.get(STOCK_SETTINGS, headers=auth)).json()["low_stock_threshold"]
    try:
        yield
    finally:
        for path, had in before.items():
            for added in await _ids(http, path, auth) - had:
                gone = await http.delete(f"{path}/{added}", headers=auth)
                assert gone.status_code in (204, 404), f"{path}/{added}: {gone.status_code} {gone.text[:200]}"
        restored = await http.patch(STOCK_SETTINGS, json={"low_stock_threshold": threshold}, headers=auth)
        assert restored.status_code == 200, restored.text


@pytest_asyncio.fixture(params=["user", "admin"])
async def fuzz_target(
    request: pytest.FixtureRequest, stack: Stack | ExternalStack
) -> AsyncIterator[FuzzTarget]:
    """Fresh accounts per role, so a locked or renamed account here is no other test's."""
    async with loopback_client(stack.gateway) as http:
        user = await register(http, "fuzz-user")
        if request.param == "user":
            target = FuzzTarget(role="user", token=user.token, gateway=stack.gateway)
        else:
            cast = Cast(
                http=http,
                user=user,
                admin=await make_admin(stack, http),
                victim=await register(http, "fuzz-victim"),
            )
            box = await cast.sandbox()
            target = FuzzTarget(
                role="admin",
                token=cast.admin.token,
                gateway=stack.gateway,
                confine={
                    "category_id": box.category["id"],
                    "product_id": box.product["id"],
                    "order_id": box.order["id"],
                    "user_id": cast.victim.user_id,
                },
                shared=cast.admin.shared,
            )
        if target.role == "user":
            yield target
        else:
            async with shop_wide_changes_undone(http, target.token):
                yield target
        target.session.close()


@pytest.fixture
def fuzz_schema(stack: Stack | ExternalStack) -> schemathesis.BaseSchema:
    """The gateway's merged document, with this suite's generation settings."""
    config = schemathesis.Config.from_dict(
        {
            "cache": {"enabled": False},
            "generation": {
                "max-examples": EXAMPLES,
                "database": "none",
                # the role's token is sent with every case: garbage tokens would stop
                # every request at the gateway's 401 and never reach a service
                "with-security-parameters": False,
            },
        }
    )
    schema = schemathesis.openapi.from_url(f"{stack.gateway}/openapi.json", config=config, timeout=20)
    schema.config.update(base_url=stack.gateway, request_timeout=20)
    return schema


# logout ends the very session the fuzzer runs on; the access walk and auth's own tests cover it
NOT_FUZZED = {("POST", "/auth/logout")}
# wrong current passwords lock the account's logins for 15 minutes: never an account others use
NOT_FUZZED_AS_SHARED = {("PUT", "/users/change-password")}


def test_every_operation_keeps_its_documented_contract_under_fuzzing(
    fuzz_schema: schemathesis.BaseSchema, fuzz_target: FuzzTarget, subtests: pytest.Subtests
) -> None:
    fuzzed = []
    for result in fuzz_schema.get_all_operations():
        # an operation schemathesis cannot read is a broken document: fail here
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in NOT_FUZZED or (fuzz_target.shared and key in NOT_FUZZED_AS_SHARED):
            continue
        with subtests.test(msg=f"{fuzz_target.role} {operation.label}"):
            _fuzz(operation, fuzz_target)
        fuzzed.append(operation.label)
    # the merged document lost no service: every service's operations were fuzzed
    assert {label.split()[1].split("/")[1] for label in fuzzed} >= {
        "auth",
        "users",
        "categories",
        "products",
        "cart",
        "orders",
        "payment",
        "admin",
    }


def _fuzz(operation: schemathesis.APIOperation, target: FuzzTarget) -> None:
    """Valid and invalid cases for one operation, each checked against the document."""
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    # no shrinking: each step is a round trip, and a slow shrink would unbound the run
    @seed(SEED + zlib.crc32(f"{target.role} {operation.label}".encode()))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        target.aim(case)
        response = case.call(session=target.session, headers=target.auth)
        url = response.request.url or ""
        if len(url) > REQUEST_LINE_LIMIT:
            # refused by the HTTP server itself (uvicorn + httptools: plain text), before any
            # application code could answer with a problem: a 4xx is all that can be asked
            assert 400 <= response.status_code < 500, f"{response.status_code} for a {len(url)}-byte URL"
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=target.auth)
        except FailureGroup as exc:  # a BaseExceptionGroup: as an AssertionError pytest reports it well
            raise AssertionError(f"{exc}\nreplay: FUZZ_SEED={SEED} FUZZ_EXAMPLES={EXAMPLES}") from None

    run()
