"""Routes of notifications: admins read what was mailed (and, in make dev, the dev mailbox)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from libs.common.auth import AdminUser
from libs.common.db import SessionDep
from libs.common.errors import NotFound, problem_doc
from services.notifications import devmailbox
from services.notifications import service as notifications
from services.notifications.context import Ctx
from services.notifications.rendering import NAMES
from services.notifications.schemas import EmailDetail, EmailPage, EmailStatus, MailboxPage

admin_router = APIRouter(prefix="/admin", tags=["admin: notifications"])

PageNo = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]
TEMPLATE_PATTERN = "^(" + "|".join(sorted(NAMES)) + ")$"


@admin_router.get("/emails")
async def list_emails(
    _: AdminUser,
    session: SessionDep,
    page: PageNo = 1,
    page_size: PageSize = 20,
    to: Annotated[str | None, Query(max_length=320, description="the recipient's address")] = None,
    template: Annotated[str | None, Query(pattern=TEMPLATE_PATTERN)] = None,
    status: EmailStatus | None = None,
) -> EmailPage:
    """E-mails sent or still to send to customers, newest first, with how each delivery went."""
    return await notifications.list_emails(
        session=session, page=page, page_size=page_size, to=to, template=template, status=status
    )


@admin_router.get("/emails/{email_id}")
async def get_email(email_id: uuid.UUID, _: AdminUser, session: SessionDep) -> EmailDetail:
    """One e-mail with its plain-text and HTML parts as they were (or will be) sent."""
    return await notifications.get_email(session=session, email_id=email_id)


@admin_router.post("/emails/{email_id}/retry", responses={409: problem_doc("It was sent already")})
async def retry_email(email_id: uuid.UUID, _: AdminUser, session: SessionDep, ctx: Ctx) -> EmailDetail:
    """Try a failed (or still waiting) e-mail again now, e.g. after the customer's address or the
    shop's SMTP settings were fixed; each retry is one more attempt."""
    return await notifications.retry_now(session=session, ctx=ctx, email_id=email_id)


@admin_router.get("/mailbox")
async def dev_mailbox(
    _: AdminUser,
    ctx: Ctx,
    to: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MailboxPage:
    """make dev only: every message its SMTP catcher received (auth's reset codes too), newest first."""
    if not ctx.settings.dev_mailbox_dir:
        raise NotFound("There is no dev mailbox here: make dev keeps one (DEV_MAILBOX_DIR).")
    return devmailbox.read(ctx.settings.dev_mailbox_dir, to=to, limit=limit)
