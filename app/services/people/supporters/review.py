"""The review list (supporters not placed at a door) and corrections: pick a door, fix the text."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from app.errors import InvalidInput, NotFound
from app.i18n import _, number
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher, aad, normalise_email, normalise_phone
from app.services.people.geocoder import geocode
from app.services.people.supporters.core import (
    _ROW,
    ROW_COLUMNS,
    decrypt_row,
    encrypt_location,
    no_placement_note,
)
from app.services.people.supporters.validation import MAX_LEN, PERSONAL, PLACED_LEVELS, _datetime

if TYPE_CHECKING:
    from app.context import CampaignContext

# Waiting for a door: an address below housenumber level, and the person agreed to 'mapping'
# (without it the server refuses to place them: offering a door would be a dead end).
_WAITING = (
    "FROM supporter s WHERE s.campaign_id = :c AND s.status = 'active' "
    "AND s.address_enc IS NOT NULL AND s.geocode_level NOT IN ('housenumber', 'manual') "
)
_MAPPING_OK = (
    "EXISTS (SELECT 1 FROM supporter_consent k WHERE k.campaign_id = s.campaign_id "
    "AND k.supporter_id = s.id AND k.purpose = 'mapping' AND k.withdrawn_at IS NULL)"
)
_REVIEW = text(
    f"SELECT {', '.join('s.' + c.strip() for c in ROW_COLUMNS.split(','))} "
    f"{_WAITING} AND {_MAPPING_OK} "
    "ORDER BY s.geocode_score NULLS FIRST, s.created_at, s.id LIMIT :lim OFFSET :off"
)
_LEFT_OUT = text(
    f"SELECT count(*) FILTER (WHERE {_MAPPING_OK}) AS waiting, "
    f"count(*) FILTER (WHERE NOT {_MAPPING_OK}) AS no_mapping {_WAITING}"
)
_STREET_DOORS = text(
    "SELECT id, numero, suffixe, lon, lat FROM address WHERE code_insee = :ci AND nom_voie = :v "
    "ORDER BY numero, suffixe NULLS FIRST LIMIT 300"
)


async def review_list(ctx: CampaignContext, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Supporters whose address is below housenumber level, with suggested doors (admin)."""
    cipher = Cipher.from_settings(ctx.settings)
    rows = (
        await ctx.session.execute(_REVIEW, {"c": ctx.campaign_id, "lim": limit, "off": offset})
    ).all()
    items = [decrypt_row(cipher, ctx.campaign_id, r) for r in rows]
    geo = await geocode(ctx.session, [i["address"] or "" for i in items])
    for item, g in zip(items, geo, strict=True):
        item["suggestion"] = g.as_dict()
        doors = []
        if g.street and g.code_insee:
            doors = [
                dict(r._mapping)
                for r in await ctx.session.execute(
                    _STREET_DOORS, {"ci": g.code_insee, "v": g.street}
                )
            ]
        item["street_doors"] = doors
    counts = (await ctx.session.execute(_LEFT_OUT, {"c": ctx.campaign_id})).one()
    await audit.record(ctx, action="supporter.review", object="supporters", rows=len(items))
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "total": counts.waiting,
        "left_out": {"no_mapping_consent": counts.no_mapping},
        "note": _review_note(counts.waiting, counts.no_mapping),
    }


def _review_note(waiting: int, no_mapping: int) -> str:
    """What the list holds and what it leaves out, for people (the empty list says why)."""
    if waiting:
        head = _("{n} supporter(s) wait for a door: pick one for each.").format(n=number(waiting))
    else:
        head = _(
            "No supporter waits for a door: every supporter with an address and the 'mapping' "
            "consent is placed."
        )
    if not no_mapping:
        return head
    return (
        head
        + " "
        + _(
            "{n} supporter(s) with an address are left out: they did not agree to 'mapping' "
            "(being placed on the map), so they cannot be placed. Record that consent, given "
            "by the person, to place them."
        ).format(n=number(no_mapping))
    )


_DOOR = text("SELECT id, lon, lat FROM address WHERE id = :id")
_UPDATE = text(
    """
    UPDATE supporter SET key_id = :k, name_enc = :n, email_enc = :e, phone_enc = :p,
        address_enc = :a, notes_enc = :o, email_hmac = :eh, phone_hmac = :ph,
        address_id_enc = :aid, point_enc = :pt,
        (tile_id, bv_code, iris_code) = (
            SELECT c.tile_id, c.bv_code, c.iris_code
            FROM porte_point_cells(CAST(:lon AS float8), CAST(:lat AS float8)) c),
        cells_version = CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                             ELSE (SELECT version FROM district_version) END,
        geocode_level = :lvl, geocode_score = :sc, geocode_note = :note,
        last_contact_at = coalesce(CAST(:lc AS timestamptz), last_contact_at), updated_at = now()
    WHERE campaign_id = :c AND id = :id AND status = 'active'
    """
)
_HAS_MAPPING = text(
    "SELECT 1 FROM supporter_consent WHERE campaign_id = :c AND supporter_id = :id "
    "AND purpose = 'mapping' AND withdrawn_at IS NULL"
)


async def _placement(
    ctx: CampaignContext, supporter_id: uuid.UUID, cur: dict[str, Any], patch: dict[str, Any]
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Where the rectified supporter stands (door id, lon, lat, geocode level, score, note): a
    door picked by the admin, the new address text geocoded again, or as it was. Only for a
    supporter who agreed to 'mapping' (422 for a picked door otherwise)."""
    mapping = (
        await ctx.session.execute(_HAS_MAPPING, {"c": ctx.campaign_id, "id": supporter_id})
    ).first() is not None
    aid, lon, lat = cur["address_id"], cur["lon"], cur["lat"]
    lvl, sc, note = cur["geocode_level"], cur["geocode_score"], cur["geocode_note"]
    if patch.get("address_id") is not None:
        if not mapping:
            raise InvalidInput(
                _(
                    "this supporter did not agree to 'mapping' (being placed on the map): they "
                    "cannot be placed on a door. Record that consent, given by the person, first."
                ),
                field="address_id",
            )
        d = (await ctx.session.execute(_DOOR, {"id": int(patch["address_id"])})).first()
        if d is None:
            raise InvalidInput(
                _("no such door: give the id of a loaded door (see street_doors)"),
                field="address_id",
            )
        aid, lon, lat, lvl, sc, note = d.id, d.lon, d.lat, "manual", 1.0, None
    elif "address" in patch:
        if cur["address"] and mapping:
            g = (await geocode(ctx.session, [cur["address"]]))[0]
            placed = g.level in PLACED_LEVELS
            aid, lon, lat = (g.address_id, g.lon, g.lat) if placed else (None, None, None)
            lvl, sc, note = g.level, g.score, g.reason
        else:
            aid = lon = lat = None
            lvl, sc = "none", None
            note = no_placement_note(bool(cur["address"]))
    return aid, lon, lat, lvl, sc, note


async def update(
    ctx: CampaignContext, supporter_id: uuid.UUID, patch: dict[str, Any]
) -> dict[str, Any]:
    """Rectify personal fields, fix the address text (re-geocoded) or pick a door (admin)."""
    r = (await ctx.session.execute(_ROW, {"c": ctx.campaign_id, "id": supporter_id})).first()
    if r is None or r.status != "active":
        raise NotFound(_("No such active supporter in this campaign."))
    cipher = Cipher.from_settings(ctx.settings)
    cur = decrypt_row(cipher, ctx.campaign_id, r)
    for f in PERSONAL:
        if f in patch:
            v = (patch[f] or "").strip() or None
            if v and len(v) > MAX_LEN[f]:
                raise InvalidInput(_("is longer than {n} characters").format(n=MAX_LEN[f]), field=f)
            if v and f == "email":
                v = normalise_email(v)
            if v and f == "phone":
                v = normalise_phone(v)
            cur[f] = v
    aid, lon, lat, lvl, sc, note = await _placement(ctx, supporter_id, cur, patch)
    hasher = Hasher.from_settings(ctx.settings)
    aid_enc, point_enc = encrypt_location(cipher, ctx.campaign_id, supporter_id, aid, lon, lat)
    params = {
        "c": ctx.campaign_id,
        "id": supporter_id,
        "k": cipher.current,
        **{
            x: cipher.encrypt(cur[f], ad=aad(ctx.campaign_id, supporter_id, f))
            for x, f in (
                ("n", "name"),
                ("e", "email"),
                ("p", "phone"),
                ("a", "address"),
                ("o", "notes"),
            )
        },
        "eh": hasher.digest(ctx.campaign_id, "email", cur["email"]) if cur["email"] else None,
        "ph": hasher.digest(ctx.campaign_id, "phone", cur["phone"]) if cur["phone"] else None,
        "aid": aid_enc,
        "pt": point_enc,
        "lon": lon,
        "lat": lat,
        "lvl": lvl,
        "sc": sc,
        "note": note,
        "lc": _datetime(patch["last_contact_at"], "last_contact_at")
        if patch.get("last_contact_at")
        else None,
    }
    try:
        async with ctx.session.begin_nested():
            await ctx.session.execute(_UPDATE, params)
    except Exception as exc:  # unique index on the HMACs: the new e-mail/phone is someone else's
        if "supporter_email_dup" in str(exc) or "supporter_phone_dup" in str(exc):
            from app.errors import Conflict

            raise Conflict(
                _("Another supporter already has this e-mail or phone number."),
                field="email" if "email" in str(exc) else "phone",
            ) from None
        raise
    await audit.record(
        ctx,
        action="supporter.rectify",
        object=f"supporter:{supporter_id}",
        rows=1,
        details={"fields": sorted(k for k in patch if k in (*PERSONAL, "address_id"))},
    )
    return {
        "id": str(supporter_id),
        "geocode_level": lvl,
        "geocode_score": sc,
        "geocode_note": note,
        "address_id": aid,
    }
