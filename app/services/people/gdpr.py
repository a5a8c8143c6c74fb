"""GDPR rights of a supporter (admin, audited): access/export, erasure, withdrawal, objection.

- export: everything held about one person, decrypted, with consents and audit events about them;
- erase: the supporter row and its consents are deleted (aggregates are live, so the counts
  change in the same transaction);
- withdraw: every consent gets ``withdrawn_at``; the row keeps only what proves the withdrawal
  (id, dates, consent records, the keyed hash of the e-mail/phone), personal columns and the point
  (and the encrypted door, and its coarse cells) are wiped, status 'withdrawn' (out of every
  aggregate at once);
- objection to visits: a ``door_flag`` on the supporter's door, holding no identity, which
  survives the purge of the supporter.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from app.errors import Conflict, InvalidInput, NotFound
from app.i18n import _
from app.services.access import audit
from app.services.access.crypto import Cipher
from app.services.people.supporters.core import _ROW, decrypt_location, decrypt_row, tags_of

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import CampaignContext
    from app.db import Executor

_CONSENTS = text(
    "SELECT purpose, given_at, given_by_subject, channel, wording_version, notice_version, "
    "collected_by, recorded_by, recorded_at, withdrawn_at, withdrawal_channel, basis, evidence, "
    "evidence_at, source FROM supporter_consent WHERE campaign_id = :c AND supporter_id = :id "
    "ORDER BY purpose"
)
_AUDIT = text(
    "SELECT at, action, role, actor_user_id, row_count FROM audit_event "
    "WHERE campaign_id = :c AND object = :o ORDER BY at"
)


async def _row(ctx: Any, supporter_id: uuid.UUID) -> Any:
    r = (await ctx.session.execute(_ROW, {"c": ctx.campaign_id, "id": supporter_id})).first()
    if r is None:
        raise NotFound(_("No such supporter in this campaign (erased, or never stored)."))
    return r


async def export_data(
    session: Executor, settings: Settings, campaign_id: uuid.UUID, supporter_id: uuid.UUID
) -> dict[str, Any] | None:
    """Everything held about one supporter (GDPR art. 15 and 20), or None when there is nobody.
    Not audited here: the caller records who asked (the admin, or the person by the form)."""
    r = (await session.execute(_ROW, {"c": campaign_id, "id": supporter_id})).first()
    if r is None:
        return None
    data = decrypt_row(Cipher.from_settings(settings), campaign_id, r)
    consents = [
        dict(c._mapping)
        for c in await session.execute(_CONSENTS, {"c": campaign_id, "id": supporter_id})
    ]
    events = [
        dict(a._mapping)
        for a in await session.execute(_AUDIT, {"c": campaign_id, "o": f"supporter:{supporter_id}"})
    ]
    flagged = None
    if data["address_id"] is not None:
        flagged = (
            await session.execute(
                text("SELECT created_at FROM door_flag WHERE campaign_id = :c AND address_id = :a"),
                {"c": campaign_id, "a": data["address_id"]},
            )
        ).scalar()
    data["tags"] = (await tags_of(session, campaign_id, [supporter_id])).get(data["id"], [])
    return {
        "supporter": data,
        "consents": consents,
        "door_objection_recorded_at": flagged,
        "processing_log": events,
        "purposes_meaning": {
            "contact": _("be contacted by the campaign"),
            "mapping": _("be counted, by place, in anonymous statistics (≥ k per area)"),
            "volunteering": _("be asked to volunteer"),
            "newsletter": _("receive the campaign's news"),
        },
    }


async def export(ctx: CampaignContext, supporter_id: uuid.UUID) -> dict[str, Any]:
    """Everything held about one supporter (GDPR art. 15 and 20), as JSON (admin; audited)."""
    out = await export_data(ctx.session, ctx.settings, ctx.campaign_id, supporter_id)
    if out is None:
        raise NotFound(_("No such supporter in this campaign (erased, or never stored)."))
    await audit.record(ctx, action="gdpr.export", object=f"supporter:{supporter_id}", rows=1)
    return out


async def erase(ctx: CampaignContext, supporter_id: uuid.UUID) -> dict[str, Any]:
    """Delete the supporter and the consents (GDPR art. 17)."""
    await _row(ctx, supporter_id)
    await ctx.session.execute(
        text("DELETE FROM supporter WHERE campaign_id = :c AND id = :id"),
        {"c": ctx.campaign_id, "id": supporter_id},
    )
    await audit.record(ctx, action="gdpr.erase", object=f"supporter:{supporter_id}", rows=1)
    return {"id": str(supporter_id), "erased": True}


_WITHDRAW_CONSENTS = text(
    "UPDATE supporter_consent SET withdrawn_at = now(), withdrawal_channel = :ch "
    "WHERE campaign_id = :c AND supporter_id = ANY(CAST(:ids AS uuid[])) AND withdrawn_at IS NULL"
)
_WITHDRAW_ROWS = text(
    """
    UPDATE supporter SET status = 'withdrawn', withdrawn_at = now(), updated_at = now(),
        name_enc = NULL, email_enc = NULL, phone_enc = NULL, address_enc = NULL,
        notes_enc = NULL, address_id_enc = NULL, point_enc = NULL, tile_id = NULL,
        bv_code = NULL, iris_code = NULL, cells_version = NULL, geocode_level = 'none',
        geocode_score = NULL, geocode_note = NULL
    WHERE campaign_id = :c AND id = ANY(CAST(:ids AS uuid[])) AND status = 'active'
    """
)


_WITHDRAW_TAGS = text(
    "DELETE FROM supporter_tag WHERE campaign_id = :c AND supporter_id = ANY(CAST(:ids AS uuid[]))"
)


async def withdraw_ids(session: Executor, campaign_id: uuid.UUID, ids: list, channel: str) -> int:
    """Record the withdrawal of every consent of these supporters; wipe what identifies them."""
    if not ids:
        return 0
    # the supporter first: an active supporter may never be left without a standing consent
    res = await session.execute(_WITHDRAW_ROWS, {"c": campaign_id, "ids": ids})
    await session.execute(_WITHDRAW_CONSENTS, {"c": campaign_id, "ids": ids, "ch": channel})
    await session.execute(_WITHDRAW_TAGS, {"c": campaign_id, "ids": ids})
    return res.rowcount


async def withdraw(
    ctx: CampaignContext,
    supporter_id: uuid.UUID,
    *,
    channel: str,
    purposes: list[str] | None = None,
) -> dict[str, Any]:
    """Withdrawal of consent (GDPR art. 7(3)), for some purposes or all; kept as proof.

    Withdrawing the last standing purpose withdraws the supporter (identity wiped); withdrawing
    'mapping' alone removes their point from every aggregate at once.
    """
    r = await _row(ctx, supporter_id)
    if r.status != "active":
        raise Conflict(_("This supporter's consent was already withdrawn."))
    standing = set(
        (
            await ctx.session.execute(
                text(
                    "SELECT purpose FROM supporter_consent WHERE campaign_id = :c "
                    "AND supporter_id = :id AND withdrawn_at IS NULL"
                ),
                {"c": ctx.campaign_id, "id": supporter_id},
            )
        )
        .scalars()
        .all()
    )
    if purposes:
        unknown = [p for p in purposes if p not in standing]
        if unknown:
            raise InvalidInput(
                _(
                    "no standing consent for {purpose!r}: the person did not give it, or "
                    "withdrew it (standing: {standing})"
                ).format(purpose=unknown[0], standing=", ".join(sorted(standing)) or "-"),
                field="purposes",
            )
    if not purposes or set(purposes) >= standing:
        await withdraw_ids(ctx.session, ctx.campaign_id, [supporter_id], channel)
        await audit.record(ctx, action="gdpr.withdraw", object=f"supporter:{supporter_id}", rows=1)
        return {"id": str(supporter_id), "status": "withdrawn", "purposes_left": []}
    await ctx.session.execute(
        text(
            "UPDATE supporter_consent SET withdrawn_at = now(), withdrawal_channel = :ch "
            "WHERE campaign_id = :c AND supporter_id = :id AND purpose = ANY(:p)"
        ),
        {"ch": channel, "c": ctx.campaign_id, "id": supporter_id, "p": list(purposes)},
    )
    if "mapping" in purposes:
        await ctx.session.execute(
            text(
                "UPDATE supporter SET address_id_enc = NULL, point_enc = NULL, tile_id = NULL, "
                "bv_code = NULL, iris_code = NULL, cells_version = NULL, geocode_level = 'none', "
                "geocode_score = NULL, geocode_note = 'mapping consent withdrawn', "
                "updated_at = now() WHERE campaign_id = :c AND id = :id"
            ),
            {"c": ctx.campaign_id, "id": supporter_id},
        )
    await audit.record(
        ctx,
        action="gdpr.withdraw",
        object=f"supporter:{supporter_id}",
        rows=1,
        details={"purposes": sorted(purposes)},
    )
    return {
        "id": str(supporter_id),
        "status": "active",
        "purposes_left": sorted(standing - set(purposes)),
    }


async def flag_door(
    session: Executor,
    campaign_id: uuid.UUID,
    address_id: int,
    *,
    request_id: uuid.UUID | None = None,
) -> bool:
    """A door the residents asked not to be visited at (no identity, kept after purges); True
    when this call created the flag.

    ``request_id``: the public-form request asking for it; the admin may revert such a flag in
    bulk (``door_objections.revert``). Without it the flag comes from someone accountable (an
    admin, a volunteer at the door): it is kept as is, and a flag the form had set becomes theirs
    (no longer revertible as part of a flood).
    """
    if request_id is None:
        sql = (
            "INSERT INTO door_flag (campaign_id, address_id, kind) VALUES (:c, :a, 'do_not_knock') "
            "ON CONFLICT (campaign_id, address_id) DO UPDATE SET request_id = NULL "
            "WHERE door_flag.request_id IS NOT NULL RETURNING (xmax = 0) AS created"
        )
    else:
        sql = (
            "INSERT INTO door_flag (campaign_id, address_id, kind, request_id) "
            "VALUES (:c, :a, 'do_not_knock', :r) ON CONFLICT DO NOTHING RETURNING true AS created"
        )
    created = (
        await session.execute(text(sql), {"c": campaign_id, "a": address_id, "r": request_id})
    ).scalar()
    return bool(created)


async def object_to_visits(ctx: CampaignContext, supporter_id: uuid.UUID) -> dict[str, Any]:
    """Objection to door-to-door visits (GDPR art. 21): flag the supporter's door."""
    r = await _row(ctx, supporter_id)
    address_id, _lon, _lat = decrypt_location(
        Cipher.from_settings(ctx.settings), ctx.campaign_id, supporter_id, r.key_id, r._mapping
    )
    if address_id is None:
        raise Conflict(
            _(
                "This supporter is not placed on a door yet: pick their door in the review list "
                "(PATCH address_id), then record the objection."
            ),
            field="address_id",
        )
    await flag_door(ctx.session, ctx.campaign_id, address_id)
    await audit.record(ctx, action="gdpr.objection", object=f"supporter:{supporter_id}", rows=1)
    return {"id": str(supporter_id), "door_flagged": True, "address_id": address_id}
