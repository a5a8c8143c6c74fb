"""Request and response models shared across routers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Role = Literal["admin", "organiser", "analyst", "volunteer"]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
]


class CampaignOut(BaseModel):
    """A campaign as its members see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    election_date: date
    visit_retention_date: date | None = None
    supporter_retention_months: int
    k_threshold: int
    require_2fa: bool
    role: str
    flagged_audit_events: int | None = Field(
        None, description="Admins only: audit events flagged as bursts in the last 30 days."
    )


# ---------------------------------------------------------------- access (issue 4)
CampaignName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class TerritoryIn(BaseModel):
    """What a campaign covers: communes, constituencies, départements, or the whole country."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["country", "departement", "constituency", "communes"] = Field(
        description="country (every district loaded), departement, constituency or communes"
    )
    codes: list[Annotated[str, StringConstraints(max_length=20)]] = Field(
        default_factory=list,
        max_length=5000,
        description="INSEE commune codes (92002), département codes (92, 2A, 971), constituency "
        "codes (92-13); empty for the whole country",
    )


class TerritoryOut(BaseModel):
    """A campaign's territory and what it covers."""

    kind: str
    codes: list[str]
    districts: int = Field(description="Districts (polling stations, IRIS) in the territory")
    communes: int
    updated_at: datetime | None = None


class CampaignCreate(BaseModel):
    """A new campaign; its creator becomes its admin."""

    model_config = ConfigDict(extra="forbid")

    name: CampaignName
    election_date: date
    visit_retention_date: date | None = Field(
        None, description="When visit outcomes are deleted; default: election date + 1 month."
    )
    supporter_retention_months: int = Field(36, ge=1, le=120)
    k_threshold: int = Field(11, ge=2, le=1000, description="Smallest count ever shown.")
    require_2fa: bool = Field(False, description="Admins and organisers must sign in with TOTP.")
    territory: TerritoryIn | None = Field(
        None, description="What the campaign covers (default: the whole country)."
    )


class CampaignPatch(BaseModel):
    """Change a campaign's settings (admins); absent fields are kept."""

    model_config = ConfigDict(extra="forbid")

    name: CampaignName | None = None
    election_date: date | None = None
    visit_retention_date: date | None = None
    supporter_retention_months: int | None = Field(None, ge=1, le=120)
    k_threshold: int | None = Field(None, ge=2, le=1000)
    require_2fa: bool | None = None


class TokenOut(BaseModel):
    """An access token (JWT) and the refresh token that renews it."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class RefreshIn(BaseModel):
    """A refresh token to rotate (or revoke, at logout)."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class InviteTokenIn(BaseModel):
    """The token from an invite link (`/m/#invite=<token>`)."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class InviteSessionOut(BaseModel):
    """A session limited to one invite: no account, no personal data."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    campaign_id: uuid.UUID
    assignment_id: uuid.UUID | None
    expires_at: datetime


class MeOut(BaseModel):
    """The signed-in account."""

    id: uuid.UUID
    email: str
    totp_enabled: bool
    mfa: bool


class TotpEnrolOut(BaseModel):
    """A new TOTP secret to put in an authenticator app, then confirm with a code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpCodeIn(BaseModel):
    """A 6-digit code from the authenticator app."""

    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


class MemberIn(BaseModel):
    """Add an existing account to the campaign."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role


class MemberPatch(BaseModel):
    """Change a member's role."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberOut(BaseModel):
    """A member of the campaign."""

    user_id: uuid.UUID
    email: str
    role: Role
    totp_enabled: bool
    created_at: datetime


class InviteIn(BaseModel):
    """A volunteer invite link, scoped to one assignment or (until turfs exist) the campaign."""

    model_config = ConfigDict(extra="forbid")

    assignment_id: uuid.UUID | None = None
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    expires_at: datetime | None = Field(
        None, description="Default: end of the assignment, else 7 days; at most 30 days ahead."
    )


class InviteOut(BaseModel):
    """An invite. ``link`` and ``token`` are only returned when it is created."""

    id: uuid.UUID
    campaign_id: uuid.UUID
    assignment_id: uuid.UUID | None
    label: str | None
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]
    link: str | None = None
    token: str | None = None
    qr_url: str


class AuditEventOut(BaseModel):
    """One audit event."""

    id: int
    at: datetime
    actor_user_id: uuid.UUID | None
    actor_email: str | None
    actor_invite_id: uuid.UUID | None
    role: str | None
    action: str
    object: str | None
    row_count: int | None
    request_id: str | None
    client: str | None
    flagged: bool
