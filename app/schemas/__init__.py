"""Request and response models of the API: every request body is one of these.

This package holds the models of accounts and campaigns (here) and, by domain, the request
bodies of the field (``app.schemas.field``: turfs, cuts, assignments, rounds, visits), of people
(``app.schemas.people``: supporters, GDPR rights, privacy) and of the ranking
(``app.schemas.ranking``). Routers take them as parameters (FastAPI answers 422 naming the field);
services receive them typed. Rules shared with file imports (a supporter's consent) stay in the
services, which the CSV rows go through too.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.authz import ADMIN, ANALYST, ORGANISER, VOLUNTEER
from app.i18n import _

# The campaign roles (app.authz.ROLES), as a type for the API.
Role = Literal[ADMIN, ORGANISER, ANALYST, VOLUNTEER]

# A flat (apartment) as a volunteer can name it: 1 to 6 capital letters, digits or hyphens, with at
# least one digit (12, 3B, A-12, 12BIS, -1), or one letter alone (a staircase or building: A).
# Words are refused ("POUR", "CONTRE", "RN", "vote RN"): this column must not become a note about
# the household. The same rule is a CHECK on visit.flat (migration 0017_smaller_holes).
FLAT_MAX = 6
FLAT_PATTERN = r"^(?:[A-Z]|[A-Z-]{0,5}[0-9][0-9A-Z-]{0,5})$"
_FLAT = re.compile(FLAT_PATTERN, re.ASCII)


def normalise_flat(value: str) -> str:
    """The flat in capitals, or ValueError saying what a flat may be."""
    flat = value.strip().upper()
    if len(flat) > FLAT_MAX or not _FLAT.fullmatch(flat):
        raise ValueError(
            _(
                "a flat is 1 to {n} letters, digits or hyphens with at least one digit "
                "(12, 3B, A-12) or a single letter (A); words and sentences are not accepted"
            ).format(n=FLAT_MAX)
        )
    return flat


Flat = Annotated[str, StringConstraints(max_length=40), AfterValidator(normalise_flat)]
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
    supporter_cells: Literal["district", "tile"] = "district"
    role: str
    flagged_audit_events: int | None = Field(
        None, description="Admins only: audit events flagged as bursts in the last 30 days."
    )


# ---------------------------------------------------------------- access
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
        None,
        description=(
            "When visit outcomes are deleted; default: election date + 1 month; at most the "
            "election date + the server's longest delay (default 1 month 7 days)."
        ),
    )
    supporter_retention_months: int = Field(36, ge=1, le=120)
    k_threshold: int = Field(11, ge=2, le=1000, description="Smallest count ever shown.")
    require_2fa: bool = Field(False, description="Admins and organisers must sign in with TOTP.")
    supporter_cells: Literal["district", "tile"] = Field(
        "district",
        description="The one partition supporter counts are published on (docs/privacy.md).",
    )
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
    supporter_cells: Literal["district", "tile"] | None = None


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


def _one_plain_line(value: str) -> str:
    """A name on one line: no control, format or separator characters (the database's CHECK
    refuses control characters; this is stricter, so nothing valid here fails there)."""
    bad = next(
        (c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
        None,
    )
    if bad is not None:
        raise ValueError(
            _("must be one line of plain text (character U+{code} refused)").format(
                code=f"{ord(bad):04X}"
            )
        )
    return value


DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(_one_plain_line),
]


class MeOut(BaseModel):
    """The signed-in account, with its server-level rights."""

    id: uuid.UUID
    email: str
    display_name: str | None = None
    totp_enabled: bool
    mfa: bool
    can_create_campaigns: bool = False
    server_admin: bool = False


Password = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class PasswordChangeIn(BaseModel):
    """Change one's own password: the current one, then the new one (10 characters or more)."""

    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class TotpEnrolOut(BaseModel):
    """A new TOTP secret to put in an authenticator app, then confirm with a code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpCodeIn(BaseModel):
    """A 6-digit code from the authenticator app."""

    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


class MemberIn(BaseModel):
    """Invite someone to the campaign by e-mail, with the role they will have."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role


class MemberInvitationOut(BaseModel):
    """An invitation to join a campaign (the same answer whether the address has an account)."""

    id: uuid.UUID
    email: str
    role: Role
    status: Literal["pending", "accepted", "expired", "revoked"]
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None


InvitationToken = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class InvitationTokenIn(BaseModel):
    """The token of an invitation link (after ``#invitation=``)."""

    model_config = ConfigDict(extra="forbid")

    token: InvitationToken


class InvitationPreviewOut(BaseModel):
    """What an invitation link offers, for the page it opens (its holder only)."""

    campaign_id: uuid.UUID
    campaign_name: str
    email: str
    role: Role
    expires_at: datetime
    account_exists: bool


class InvitationRegisterIn(BaseModel):
    """Create the account an invitation was sent to, and join the campaign."""

    model_config = ConfigDict(extra="forbid")

    token: InvitationToken
    password: Password
    display_name: DisplayName | None = None


class MePatch(BaseModel):
    """What the account's holder may change about it: the name organisers see."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None


class InvitationAcceptedOut(BaseModel):
    """The campaign joined, and the role in it."""

    campaign_id: uuid.UUID
    campaign_name: str
    role: Role


class AccountRightsOut(BaseModel):
    """An account and its server-level rights (server admins)."""

    id: uuid.UUID
    email: str
    is_active: bool
    can_create_campaigns: bool
    server_admin: bool
    created_at: datetime


class AccountRightsPatch(BaseModel):
    """Give or take the right to create campaigns."""

    model_config = ConfigDict(extra="forbid")

    can_create_campaigns: bool


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
