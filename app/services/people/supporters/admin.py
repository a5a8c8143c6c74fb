"""The campaign context of a supporter import run on the server (``porte supporters import``),
in the name of an admin of the campaign, checked as the API checks a caller."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text

from app.authz import ADMIN
from app.errors import ImportFailed, NotFound
from app.i18n import _, role_name

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import CampaignContext
    from app.db import Executor

_ACCOUNT = text("SELECT id, is_active, token_version FROM app_user WHERE email = :e")
_CAMPAIGNS = text(
    "SELECT c.id, c.name FROM campaign c JOIN membership m ON m.campaign_id = c.id "
    "AND m.user_id = :u WHERE c.id = CAST(:id AS uuid) "
    "OR (CAST(:id AS uuid) IS NULL AND c.name = :name) ORDER BY c.created_at"
)


async def _campaign_named(
    session: Executor, campaign: str, email: str, account_id: uuid.UUID
) -> tuple[uuid.UUID, str]:
    """The id and name of the account's campaign given by id or exact name (404 when it has
    none, refused when several bear that name)."""
    try:
        cid: uuid.UUID | None = uuid.UUID(campaign.strip())
    except ValueError:
        cid = None
    found = (
        await session.execute(_CAMPAIGNS, {"id": cid, "name": campaign.strip(), "u": account_id})
    ).all()
    if not found:
        raise NotFound(
            (
                _(
                    "{email} is not a member of any campaign with id {cid}. Check it, or give the "
                    "campaign id (GET /campaigns lists the campaigns of a signed-in account)."
                )
                if cid
                else _(
                    "{email} is not a member of any campaign named {name!r} (exact name, with "
                    "case). Check it, or give the campaign id (GET /campaigns lists the campaigns "
                    "of a signed-in account)."
                )
            ).format(email=email, cid=cid, name=campaign.strip())
        )
    if len(found) > 1:
        raise ImportFailed(
            _(
                "{n} campaigns of {email} are named {name!r}: give the campaign id instead ({ids})."
            ).format(
                n=len(found),
                email=email,
                name=campaign.strip(),
                ids=", ".join(str(r.id) for r in found),
            )
        )
    return found[0].id, found[0].name


async def admin_context(
    session: Executor, settings: Settings, *, campaign: str, admin_email: str, client: str
) -> CampaignContext:
    """The campaign context of an import run on the server in the name of ``admin_email``.

    The account must exist and be active, and be an admin member of the campaign (given by id
    or exact name, among the account's campaigns); the transaction's tenant is then that campaign.
    """
    from app.context import CampaignContext, Principal
    from app.security import STANDING_TEXT

    email = admin_email.strip().lower()
    account = (await session.execute(_ACCOUNT, {"e": email})).first()
    if account is None:
        raise NotFound(
            _(
                "No account {email}. The import is made in the name of an admin of the "
                "campaign: give the e-mail they sign in with."
            ).format(email=email)
        )
    if not account.is_active:
        raise ImportFailed(
            _("The account {email} is disabled; it cannot import supporters.").format(email=email)
        )
    from app.db import set_tenant

    await set_tenant(session, None, account.id)  # row-level security: this account's campaigns
    cid, name = await _campaign_named(session, campaign, email, account.id)
    standing = (
        (
            await session.execute(
                STANDING_TEXT,
                {"c": cid, "u": account.id, "i": None, "v": account.token_version},
            )
        )
        .mappings()
        .first()
    )
    if standing is None or standing["role"] != ADMIN:
        role = standing["role"] if standing else "no"
        raise ImportFailed(
            _(
                "{email} has the {role} role in campaign {name!r}, not admin: only an admin of "
                "the campaign, accountable for its supporter file, may import supporters. An "
                "admin can change roles (PATCH /campaigns/{{cid}}/members/{{user_id}}), or give "
                "another admin's e-mail."
            ).format(email=email, role=role_name(role) if standing else _("no"), name=name)
        )
    ctx = CampaignContext(
        campaign_id=cid,
        role=ADMIN,
        principal=Principal(user_id=account.id),
        session=session,
        k_threshold=standing["k_threshold"],
        election_date=standing["election_date"],
        request_id=f"cli-{uuid.uuid4()}",
        client=client,
        settings=settings,
    )
    ctx.extras.update(campaign_name=name, email=email)
    return ctx
