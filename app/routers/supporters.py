"""Supporters: create, import, review, rectify, aggregates ≥ k. Thin: see services."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile

from app.schemas.people import PrivacyNoticeIn, SupporterIn, SupporterPatch
from app.security import CampaignScope, ReplicaScope
from app.services.people import privacy as privacy_service
from app.services.people.supporters import core, imports, review
from app.services.people.supporters.aggregates import supporter_counts

router = APIRouter(tags=["supporters"])


@router.post("/campaigns/{campaign_id}/supporters", status_code=201)
async def create_supporter(ctx: CampaignScope, body: SupporterIn) -> dict:
    """Store one supporter with the consent they gave (409 names an existing duplicate)."""
    return await core.create_one(ctx, body.model_dump(exclude_unset=True))


@router.get("/campaigns/{campaign_id}/supporters")
async def list_supporters(
    ctx: CampaignScope,
    status: Literal["active", "withdrawn"] = "active",
    level: Literal["housenumber", "interpolated", "street", "commune", "none", "manual"]
    | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """A page of supporters with their personal data (admin; audited)."""
    return await core.list_supporters(ctx, status=status, level=level, limit=limit, offset=offset)


@router.post("/campaigns/{campaign_id}/supporters/import")
async def import_supporters(
    ctx: CampaignScope,
    file: Annotated[
        UploadFile, File(description="CSV (UTF-8 or Latin-1), `;`, `,` or tab separated")
    ],
    mapping: Annotated[
        str | None, Form(description='{"columns": {...}, "defaults": {...}}')
    ] = None,
    valid_rows_only: Annotated[bool, Form()] = False,
    source: Annotated[
        Literal["nationbuilder", "civicrm", "digitalebox", "auto"] | None,
        Form(description="Read the file as this CRM's people export (built-in mapping)"),
    ] = None,
    tags: Annotated[
        str | None, Form(description="Tags to keep from a CRM export, comma-separated")
    ] = None,
    dry_run: Annotated[bool, Form(description="Report what would happen; store nothing")] = False,
) -> dict:
    """Import a supporter file: all or nothing unless valid_rows_only=true. With ``source``, a
    NationBuilder, CiviCRM or DigitaleBox export, each row under a lawful basis or refused."""
    return await imports.import_csv(
        ctx,
        file.file,
        size=file.size,
        mapping=mapping,
        valid_rows_only=valid_rows_only,
        source=source,
        tags=tags,
        dry_run=dry_run,
        file_name=file.filename or "",
    )


@router.get("/campaigns/{campaign_id}/supporters/review")
async def review_supporters(
    ctx: CampaignScope,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Supporters not placed at a door, with suggestions (admin; audited)."""
    return await review.review_list(ctx, limit=limit, offset=offset)


@router.get("/campaigns/{campaign_id}/supporters/aggregates")
async def supporter_aggregates(
    ctx: ReplicaScope,
    by: Literal["district", "tile"] = "district",
    district_kind: Literal["bureau_de_vote", "iris"] | None = None,
) -> dict:
    """Supporters per cell of the campaign's one partition (district or INSEE tile, campaign
    setting supporter_cells); cells below the campaign's k, zero included, are hidden."""
    res = await supporter_counts(
        ctx.session,
        ctx.campaign_id,
        k=ctx.k_threshold,
        by=by,
        district_kind=district_kind,
        settings=ctx.settings,
    )
    return res.as_dict()


@router.get("/campaigns/{campaign_id}/supporters/{supporter_id}")
async def get_supporter(ctx: CampaignScope, supporter_id: uuid.UUID) -> dict:
    """One supporter, decrypted (admin; audited)."""
    return await core.get_one(ctx, supporter_id)


@router.patch("/campaigns/{campaign_id}/supporters/{supporter_id}")
async def patch_supporter(
    ctx: CampaignScope, supporter_id: uuid.UUID, body: SupporterPatch
) -> dict:
    """Rectify fields, fix the address text (re-geocoded) or pick a door (address_id)."""
    return await review.update(ctx, supporter_id, body.model_dump(exclude_unset=True))


@router.put("/campaigns/{campaign_id}/privacy-notice")
async def put_privacy_notice(ctx: CampaignScope, body: PrivacyNoticeIn) -> dict:
    """Set the controller and contacts shown on the public privacy notice."""
    return await privacy_service.set_notice(ctx, body)
