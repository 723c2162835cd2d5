"""A part's one typed state: opened from the kernel before the part serves, closed after it stopped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends

from libs.common.config import CommonSettings
from libs.common.service import Kernel, ServiceContext, create_service_app, service_context
from libs.common.testing import Infra, TestKeys, running_app, settings_for


@dataclass
class Shelf:
    items: list[str] = field(default_factory=list)
    closed: bool = False


ShelfContext = ServiceContext[CommonSettings, Shelf]
Ctx = Annotated[ShelfContext, Depends(service_context)]
router = APIRouter()


@router.post("/shelf/{item}", status_code=201)
async def put_on_shelf(item: str, ctx: Ctx) -> list[str]:
    ctx.state.items.append(item)
    return ctx.state.items


def settings(infra: Infra, keys: TestKeys) -> CommonSettings:
    return settings_for(CommonSettings, infra, keys, service_name="statetest", event_bus="memory")


async def test_routes_and_hooks_reach_the_state_its_factory_opened_and_it_is_closed_at_shutdown(
    infra: Infra, keys: TestKeys
) -> None:
    opened: list[Shelf] = []
    seen_by_startup: list[Shelf] = []

    @contextlib.asynccontextmanager
    async def open_shelf(kernel: Kernel[CommonSettings]) -> AsyncIterator[Shelf]:
        shelf = Shelf(items=[kernel.settings.service_name])
        opened.append(shelf)
        yield shelf
        shelf.closed = True

    async def startup(ctx: ShelfContext) -> None:
        seen_by_startup.append(ctx.state)

    app = create_service_app(
        settings=settings(infra, keys),
        title="state",
        routers=[router],
        state=open_shelf,
        on_startup=[startup],
    )
    async with running_app(app) as client:
        assert (await client.post("/shelf/lamp")).json() == ["statetest", "lamp"]
        [shelf] = opened
        assert seen_by_startup == [shelf] and not shelf.closed
    assert shelf.closed


async def test_a_state_that_cannot_open_stops_the_start_and_leaves_nothing_open(
    infra: Infra, keys: TestKeys
) -> None:
    kernels: list[Kernel[CommonSettings]] = []

    @contextlib.asynccontextmanager
    async def broken(kernel: Kernel[CommonSettings]) -> AsyncIterator[Shelf]:
        kernels.append(kernel)
        raise RuntimeError("the shelf is not there")
        yield Shelf()

    app = create_service_app(settings=settings(infra, keys), title="state", routers=[router], state=broken)
    with pytest.raises(RuntimeError, match="the shelf is not there"):
        async with running_app(app):
            pass
    assert kernels[0].http.is_closed
