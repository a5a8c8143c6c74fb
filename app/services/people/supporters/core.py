"""Consented supporters: encryption, duplicate detection, geocoding, storage and reading
(what a valid supporter is, and the checks of a raw one: ``validation.py``).

Every supporter is stored together with its consent records (one per purpose) in ONE statement;
the database refuses an active supporter without a consent given by the person (constraint
trigger ``supporter_requires_consent``, checked at the end of each statement).
Nothing personal is logged: errors name the field and the row number, never the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import CUSTOM_PLAN_FROM, custom_plans
from app.errors import Conflict, InvalidInput, NotFound
from app.i18n import N_, _
from app.services.access import audit
from app.services.access.crypto import Cipher, Hasher, aad
from app.services.people.geocoder import (
    GeocodeResult,
    geocode_parsed,
    parse_address,
)
from app.services.people.supporters.validation import (
    PERSONAL,
    PLACED_LEVELS,
    NewSupporter,
    validate,
)

if TYPE_CHECKING:
    from app.context import CampaignContext
    from app.db import Executor

# ---------------------------------------------------------------- storage
_EXISTING = text(
    "SELECT id, email_hmac, phone_hmac FROM supporter WHERE campaign_id = :c AND status = 'active' "
    "AND (email_hmac = ANY(CAST(:e AS bytea[])) OR phone_hmac = ANY(CAST(:p AS bytea[])))"
)
# One statement inserts the supporters AND their consents: the consent rule (constraint trigger
# supporter_requires_consent) is checked at its end.
_INSERT = text(
    """
    WITH s AS (
        INSERT INTO supporter (campaign_id, id, key_id, name_enc, email_enc, phone_enc,
            address_enc, notes_enc, email_hmac, phone_hmac, address_id_enc, point_enc, tile_id,
            bv_code, iris_code, cells_version, geocode_level, geocode_score, geocode_note,
            last_contact_at)
        SELECT :c, t.id, :k, t.n, t.e, t.p, t.a, t.o, t.eh, t.ph, t.aid, t.pt, cell.tile_id,
               cell.bv_code, cell.iris_code,
               CASE WHEN t.lon IS NULL THEN NULL ELSE (SELECT version FROM district_version) END,
               t.lvl, t.sc, t.note, coalesce(t.lc, now())
        FROM unnest(CAST(:id AS uuid[]), CAST(:n AS bytea[]), CAST(:e AS bytea[]),
                    CAST(:p AS bytea[]), CAST(:a AS bytea[]), CAST(:o AS bytea[]),
                    CAST(:eh AS bytea[]), CAST(:ph AS bytea[]), CAST(:aid AS bytea[]),
                    CAST(:pt AS bytea[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]),
                    CAST(:lvl AS text[]), CAST(:sc AS float8[]), CAST(:note AS text[]),
                    CAST(:lc AS timestamptz[]))
             AS t(id, n, e, p, a, o, eh, ph, aid, pt, lon, lat, lvl, sc, note, lc)
        -- the coarse cells the aggregates read; the point itself is stored only encrypted
        LEFT JOIN LATERAL porte_point_cells(t.lon, t.lat) cell ON true
        RETURNING id
    )
    INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at,
        given_by_subject, channel, wording_version, notice_version, collected_by, recorded_by,
        basis, evidence, evidence_at, source)
    SELECT :c, t.sid, t.purpose, t.given_at, t.gbs, t.channel, t.wv, t.nv, t.cb, :u,
           t.basis, t.ev, t.ev_at, t.src
    FROM unnest(CAST(:sid AS uuid[]), CAST(:purpose AS text[]),
                CAST(:given_at AS timestamptz[]), CAST(:gbs AS boolean[]),
                CAST(:channel AS text[]), CAST(:wv AS text[]), CAST(:nv AS text[]),
                CAST(:cb AS text[]), CAST(:basis AS text[]), CAST(:ev AS text[]),
                CAST(:ev_at AS timestamptz[]), CAST(:src AS text[]))
         AS t(sid, purpose, given_at, gbs, channel, wv, nv, cb, basis, ev, ev_at, src)
    JOIN s ON s.id = t.sid
    """
)


def encrypt_location(
    cipher: Cipher,
    campaign_id: uuid.UUID,
    supporter_id: uuid.UUID,
    address_id: int | None,
    lon: float | None,
    lat: float | None,
) -> tuple[bytes | None, bytes | None]:
    """The exact door (id) and point (``"lon lat"``, exact float text), encrypted for this row."""
    return (
        cipher.encrypt(
            None if address_id is None else str(int(address_id)),
            ad=aad(campaign_id, supporter_id, "address_id"),
        ),
        cipher.encrypt(
            None if lon is None or lat is None else f"{float(lon)!r} {float(lat)!r}",
            ad=aad(campaign_id, supporter_id, "point"),
        ),
    )


def decrypt_location(
    cipher: Cipher, campaign_id: uuid.UUID, supporter_id: uuid.UUID, key_id: str | None, m: Any
) -> tuple[int | None, float | None, float | None]:
    """``(address_id, lon, lat)`` of a row read with ``address_id_enc`` and ``point_enc``."""
    aid = m["address_id_enc"]
    point = m["point_enc"]
    address_id = (
        int(cipher.decrypt(aid, key_id=key_id, ad=aad(campaign_id, supporter_id, "address_id")))
        if aid is not None
        else None
    )
    lon = lat = None
    if point is not None:
        text_ = cipher.decrypt(point, key_id=key_id, ad=aad(campaign_id, supporter_id, "point"))
        lon, lat = (float(x) for x in text_.split())
    return address_id, lon, lat


_SAME = {
    ("e-mail", "supporter"): N_("same e-mail as supporter {ref}"),
    ("phone", "supporter"): N_("same phone number as supporter {ref}"),
    ("e-mail", "row"): N_("same e-mail as row {ref}"),
    ("phone", "row"): N_("same phone number as row {ref}"),
    ("e-mail", "item"): N_("same e-mail as item {ref}"),
    ("phone", "item"): N_("same phone number as item {ref}"),
}


def explain_duplicate(found: str) -> str:
    """``same e-mail as row 3`` (the internal description of ``find_duplicates`` and the
    import's rows) in the language of the reader."""
    parts = found.split(" ")
    if len(parts) == 5 and parts[0] == "same" and (parts[1], parts[3]) in _SAME:
        return _(_SAME[(parts[1], parts[3])]).format(ref=parts[4])
    return found


def hash_identifiers(hasher: Hasher, campaign_id: uuid.UUID, items: list[NewSupporter]) -> None:
    """Fill the HMACs of the normalised e-mail and phone."""
    for s in items:
        s.email_hmac = hasher.digest(campaign_id, "email", s.email) if s.email else None
        s.phone_hmac = hasher.digest(campaign_id, "phone", s.phone) if s.phone else None


async def find_duplicates(
    session: Executor, campaign_id: uuid.UUID, items: list[NewSupporter]
) -> dict[int, str]:
    """Index in ``items`` -> description of the duplicate (stored supporter id, or earlier row)."""
    out: dict[int, str] = {}
    emails = [s.email_hmac for s in items if s.email_hmac]
    phones = [s.phone_hmac for s in items if s.phone_hmac]
    stored: dict[bytes, uuid.UUID] = {}
    if emails or phones:
        async with custom_plans(session, when=len(emails) + len(phones) >= CUSTOM_PLAN_FROM):
            found = (
                await session.execute(_EXISTING, {"c": campaign_id, "e": emails, "p": phones})
            ).all()
        for r in found:
            if r.email_hmac:
                stored[bytes(r.email_hmac)] = r.id
            if r.phone_hmac:
                stored[bytes(r.phone_hmac)] = r.id
    seen: dict[bytes, int] = {}
    for i, s in enumerate(items):
        for h, what in ((s.email_hmac, "e-mail"), (s.phone_hmac, "phone")):
            if h is None:
                continue
            if h in stored:
                out.setdefault(i, f"same {what} as supporter {stored[h]}")
            elif h in seen:
                out.setdefault(i, f"same {what} as item {seen[h]}")
            else:
                seen[h] = i
    return out


async def geocode_items(session: Executor, items: list[NewSupporter]) -> None:
    """Geocode the addresses of supporters who agreed to 'mapping' (one SQL pass per batch)."""
    todo = []
    for s in items:
        if not s.address or "mapping" not in s.purposes:
            continue
        if s.no_geocode:
            s.geo = GeocodeResult(level="none", score=0.0, reason=s.no_geocode)
        else:
            todo.append(s)
    res = await geocode_parsed(session, [s.parsed or parse_address(s.address) for s in todo])
    for s, g in zip(todo, res, strict=True):
        s.geo = g


def no_placement_note(has_address: bool) -> str:
    """Why a supporter is not placed when no geocoding was tried: no address, or no 'mapping'."""
    if not has_address:
        return _("no address")
    return _(
        "not placed: the person did not agree to 'mapping' (being placed on the map); "
        "record that consent, given by the person, to place them"
    )


def _geo_columns(s: NewSupporter) -> tuple:
    g = s.geo
    if g is None:
        note = no_placement_note(bool(s.address))
        return None, None, None, "none", None, note
    placed = g.level in PLACED_LEVELS
    return (
        g.address_id if placed else None,
        g.lon if placed else None,
        g.lat if placed else None,
        g.level,
        g.score,
        g.reason,
    )


def _columnar(names: str, rows: Iterable[tuple]) -> dict[str, list]:
    """``rows`` as the array parameters of an ``INSERT ... SELECT FROM unnest(...)``: one list
    per name (``names``: the parameters, space-separated, in the order of a row's values)."""
    keys = names.split()
    cols: dict[str, list] = {k: [] for k in keys}
    for row in rows:
        for k, v in zip(keys, row, strict=True):
            cols[k].append(v)
    return cols


def _supporter_row(cipher: Cipher, cid: uuid.UUID, s: NewSupporter) -> tuple:
    """One supporter's values for ``_INSERT``: identity encrypted, location encrypted, the
    geocoder's level, score and note in clear."""
    enc = {f: cipher.encrypt(getattr(s, f), ad=aad(cid, s.id, f)) for f in PERSONAL}
    aid, lon, lat, lvl, sc, note = _geo_columns(s)
    aid_enc, point_enc = encrypt_location(cipher, cid, s.id, aid, lon, lat)
    identity = (enc["name"], enc["email"], enc["phone"], enc["address"], enc["notes"])
    return (
        s.id,
        *identity,
        s.email_hmac,
        s.phone_hmac,
        aid_enc,
        point_enc,
        lon,
        lat,
        lvl,
        sc,
        note,
        s.last_contact_at,
    )


async def store(ctx: CampaignContext, items: list[NewSupporter]) -> None:
    """Encrypt and insert supporters and their consents in the request's transaction."""
    if not items:
        return
    cipher = Cipher.from_settings(ctx.settings)
    cid = ctx.campaign_id
    cols = _columnar(
        "id n e p a o eh ph aid pt lon lat lvl sc note lc",
        (_supporter_row(cipher, cid, s) for s in items),
    )
    cons = _columnar(
        "sid purpose given_at gbs channel wv nv cb basis ev ev_at src",
        (
            (
                s.id,
                p,
                c.given_at,
                c.given_by_subject,
                c.channel,
                c.wording_version,
                c.notice_version,
                c.collected_by,
                c.basis,
                c.evidence,
                c.evidence_at,
                c.source,
            )
            for s in items
            for c in s.bases
            for p in c.purposes
        ),
    )
    try:
        async with ctx.session.begin_nested():
            await ctx.session.execute(
                _INSERT, {"c": cid, "k": cipher.current, "u": ctx.user_id, **cols, **cons}
            )
    except DBAPIError as exc:
        if "supporter_requires_consent" in str(exc) or "no consent given" in str(exc):
            raise InvalidInput(
                _("a supporter cannot be stored without the consent given by the person"),
                field="consent",
            ) from None
        raise
    if any(s.tags for s in items):
        await ctx.session.execute(
            _TAGS,
            {
                "c": cid,
                "sid": [s.id for s in items for _t in s.tags],
                "tag": [t for s in items for t in s.tags],
            },
        )


_TAGS = text(
    "INSERT INTO supporter_tag (campaign_id, supporter_id, tag) "
    "SELECT :c, t.sid, t.tag "
    "FROM unnest(CAST(:sid AS uuid[]), CAST(:tag AS text[])) AS t(sid, tag) "
    "ON CONFLICT DO NOTHING"
)
_TAGS_OF = text(
    "SELECT supporter_id, array_agg(tag ORDER BY tag) AS tags FROM supporter_tag "
    "WHERE campaign_id = :c AND supporter_id = ANY(CAST(:ids AS uuid[])) GROUP BY supporter_id"
)


async def tags_of(session: Executor, campaign_id: uuid.UUID, ids: list) -> dict[str, list[str]]:
    """The tags of these supporters (id as text -> sorted tags)."""
    if not ids:
        return {}
    rows = await session.execute(_TAGS_OF, {"c": campaign_id, "ids": ids})
    return {str(r.supporter_id): list(r.tags) for r in rows}


def summary(s: NewSupporter) -> dict[str, Any]:
    """What the API answers after storing one supporter (no personal data echoed back)."""
    g = s.geo
    return {
        "id": str(s.id),
        "geocode_level": g.level if g else "none",
        "geocode_score": g.score if g else None,
        # without 'mapping' nobody may place them: not for review (the note says why)
        "needs_review": (g.level != "housenumber") if g else False,
        "geocode_note": g.reason if g else (no_placement_note(True) if s.address else None),
        "consent_purposes": s.purposes,
    }


async def create_one(ctx: CampaignContext, raw: dict[str, Any]) -> dict[str, Any]:
    """Store one supporter with its consent; 409 naming the duplicate's id."""
    s = validate(raw)
    hash_identifiers(Hasher.from_settings(ctx.settings), ctx.campaign_id, [s])
    dups = await find_duplicates(ctx.session, ctx.campaign_id, [s])
    if dups:
        dup_id = dups[0].rsplit(" ", 1)[-1]
        raise Conflict(
            _(
                "This person is already a supporter ({duplicate}). Nothing was stored: update "
                "the existing supporter (PATCH) instead."
            ).format(duplicate=explain_duplicate(dups[0])),
            field="email" if "e-mail" in dups[0] else "phone",
            extra={"duplicate_of": dup_id},
        )
    await geocode_items(ctx.session, [s])
    await store(ctx, [s])
    await audit.record(ctx, action="supporter.create", object=f"supporter:{s.id}", rows=1)
    return summary(s)


# ---------------------------------------------------------------- reading
# Every column a supporter's views decrypt (``decrypt_row``).
ROW_COLUMNS = (
    "id, status, key_id, name_enc, email_enc, phone_enc, address_enc, notes_enc, "
    "address_id_enc, point_enc, geocode_level, geocode_score, geocode_note, last_contact_at, "
    "created_at, updated_at, withdrawn_at"
)
_ROW = text(f"SELECT {ROW_COLUMNS} FROM supporter WHERE campaign_id = :c AND id = :id")


def decrypt_row(cipher: Cipher, campaign_id: uuid.UUID, r: Any) -> dict[str, Any]:
    """A supporter row with its personal fields and exact door decrypted."""
    m = r._mapping
    address_id, lon, lat = decrypt_location(cipher, campaign_id, m["id"], m["key_id"], m)
    out = {
        "id": str(m["id"]),
        "status": m["status"],
        "address_id": address_id,
        "lon": lon,
        "lat": lat,
        "geocode_level": m["geocode_level"],
        "geocode_score": m["geocode_score"],
        "geocode_note": m["geocode_note"],
        "last_contact_at": m["last_contact_at"],
        "created_at": m["created_at"],
        "updated_at": m["updated_at"],
        "withdrawn_at": m["withdrawn_at"],
    }
    for f in PERSONAL:
        blob = m[f"{f}_enc"]
        out[f] = (
            cipher.decrypt(blob, key_id=m["key_id"], ad=aad(campaign_id, m["id"], f))
            if blob is not None
            else None
        )
    return out


async def get_one(ctx: CampaignContext, supporter_id: uuid.UUID) -> dict[str, Any]:
    """One supporter, decrypted (admin; audited)."""
    r = (await ctx.session.execute(_ROW, {"c": ctx.campaign_id, "id": supporter_id})).first()
    if r is None:
        raise NotFound(_("No such supporter in this campaign (erased, or never stored)."))
    out = decrypt_row(Cipher.from_settings(ctx.settings), ctx.campaign_id, r)
    out["tags"] = (await tags_of(ctx.session, ctx.campaign_id, [supporter_id])).get(out["id"], [])
    await audit.record(ctx, action="supporter.read", object=f"supporter:{supporter_id}", rows=1)
    return out


_LIST = text(
    f"SELECT {ROW_COLUMNS} FROM supporter WHERE campaign_id = :c AND status = :st "
    "AND (CAST(:lvl AS text) IS NULL OR geocode_level = :lvl) "
    "ORDER BY created_at, id LIMIT :lim OFFSET :off"
)


async def list_supporters(
    ctx: CampaignContext,
    *,
    status: str = "active",
    level: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of supporters, decrypted (admin; audited)."""
    rows = (
        await ctx.session.execute(
            _LIST, {"c": ctx.campaign_id, "st": status, "lvl": level, "lim": limit, "off": offset}
        )
    ).all()
    cipher = Cipher.from_settings(ctx.settings)
    items = [decrypt_row(cipher, ctx.campaign_id, r) for r in rows]
    tags = await tags_of(ctx.session, ctx.campaign_id, [r.id for r in rows])
    for item in items:
        item["tags"] = tags.get(item["id"], [])
    await audit.record(ctx, action="supporter.list", object="supporters", rows=len(items))
    return {"items": items, "limit": limit, "offset": offset}
