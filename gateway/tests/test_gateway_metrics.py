"""The gateway's own metrics: what it answered, per route pattern, readable only by the shop's scrapers."""

from __future__ import annotations

import httpx
from gateway_testkit import gateway_client, gateway_settings

from libs.common.testing import Infra, TestKeys, assert_problem


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_answers_by_route_pattern_and_upstream_failures(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    settings = gateway_settings(infra, keys, upstreams)
    token = settings.internal_api_token.get_secret_value()
    async with gateway_client(settings) as gw:
        for slug in ("red-shoe", "blue-shoe", "green-shoe"):
            assert (await gw.get(f"/categories/{slug}")).status_code == 200
        assert_problem(await gw.get("/orders", headers=keys.bearer()), 503)  # nothing listens for orders
        assert_problem(await gw.get("/no/such/thing"), 404)

        text = (await gw.get("/metrics", headers={"X-Internal-Token": token})).text
        assert (
            sample(
                text,
                "gateway_requests_total",
                service="catalog",
                route="/categories/{id_or_slug}",
                method="GET",
                status="200",
            )
            == 3
        )
        assert "red-shoe" not in text  # raw paths never become series
        assert (
            sample(
                text, "gateway_requests_total", service="orders", route="/orders", method="GET", status="503"
            )
            == 1
        )
        assert sample(text, "gateway_upstream_failures_total", service="orders", kind="unavailable") == 1
        assert (
            sample(
                text,
                "gateway_requests_total",
                service="gateway",
                route="unmatched",
                method="GET",
                status="404",
            )
            == 1
        )
        assert (
            sample(
                text,
                "gateway_request_duration_seconds_count",
                service="catalog",
                route="/categories/{id_or_slug}",
            )
            == 3
        )
        bearer = await gw.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200 and "gateway_open_websockets" in bearer.text


async def test_metrics_are_refused_to_guests_users_and_admins(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    assert_problem(await gw.get("/metrics"), 403)
    assert_problem(await gw.get("/metrics", headers=keys.bearer(role="admin")), 403)
    assert_problem(await gw.get("/metrics", headers={"X-Internal-Token": "guess"}), 403)
