"""The authorization table: for every route, who may call it. One table, enforced and tested.

``campaign_context`` (app.security) looks the route up here on every campaign request, so a route
that is missing from the table is refused (fail closed), and ``tests/test_authz_matrix.py`` walks
``app.routes`` and fails when a route is missing.

Values: a set of campaign roles, or PUBLIC (no sign-in), or SIGNED_IN (any account, no campaign),
or a server-level right of the account (SERVER_ADMIN, CAMPAIGN_CREATOR: see ``SERVER_RIGHTS``).
The role ``volunteer`` covers both volunteer accounts and invite-link sessions.
"""

from __future__ import annotations

from typing import Final

PUBLIC: Final = "public"
SIGNED_IN: Final = "signed_in"
# Server-level rights, held by accounts (not by campaign roles). Server admins are made on the
# server (`porte admin create|rights --server-admin`); they may give the right to create
# campaigns, which `porte admin create|rights --can-create-campaigns` also gives.
SERVER_ADMIN: Final = "server_admin"
CAMPAIGN_CREATOR: Final = "campaign_creator"  # accounts that may create campaigns (and admins)
SERVER_RIGHTS: Final = (SERVER_ADMIN, CAMPAIGN_CREATOR)
ADMIN, ORGANISER, ANALYST, VOLUNTEER = "admin", "organiser", "analyst", "volunteer"
ROLES: Final = (ADMIN, ORGANISER, ANALYST, VOLUNTEER)

ALL = frozenset(ROLES)
STAFF = frozenset({ADMIN, ORGANISER})
PLANNERS = frozenset({ADMIN, ORGANISER, ANALYST})
ADMIN_ONLY = frozenset({ADMIN})

Rule = str | frozenset[str]

ROUTE_ROLES: dict[tuple[str, str], Rule] = {
    # ---- foundation: public reference data, no personal data
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/districts"): PUBLIC,
    ("GET", "/districts/{code}"): PUBLIC,
    ("GET", "/elections"): PUBLIC,
    ("GET", "/elections/{election}/sides"): PUBLIC,
    # ---- access
    ("POST", "/auth/token"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("POST", "/auth/logout"): PUBLIC,
    ("POST", "/auth/invite"): PUBLIC,
    ("GET", "/auth/me"): SIGNED_IN,
    ("PATCH", "/auth/me"): SIGNED_IN,
    ("POST", "/auth/totp/enrol"): SIGNED_IN,
    ("POST", "/auth/totp/confirm"): SIGNED_IN,
    ("POST", "/auth/totp/disable"): SIGNED_IN,
    ("POST", "/auth/password"): SIGNED_IN,
    ("GET", "/campaigns"): SIGNED_IN,
    ("POST", "/campaigns"): CAMPAIGN_CREATOR,
    ("GET", "/server/accounts"): SERVER_ADMIN,
    ("PATCH", "/server/accounts/{user_id}"): SERVER_ADMIN,
    ("GET", "/campaigns/{campaign_id}"): ALL,
    ("PATCH", "/campaigns/{campaign_id}"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/territory"): PLANNERS,
    ("PUT", "/campaigns/{campaign_id}/territory"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/members"): ADMIN_ONLY,
    # Adding a member is an invitation by e-mail: admins any role, organisers volunteers only.
    ("POST", "/campaigns/{campaign_id}/members"): STAFF,
    ("GET", "/campaigns/{campaign_id}/member-invitations"): STAFF,
    ("DELETE", "/campaigns/{campaign_id}/member-invitations/{invitation_id}"): STAFF,
    ("POST", "/invitations/preview"): PUBLIC,
    ("POST", "/invitations/accept"): SIGNED_IN,
    ("POST", "/invitations/register"): PUBLIC,
    ("PATCH", "/campaigns/{campaign_id}/members/{user_id}"): ADMIN_ONLY,
    ("DELETE", "/campaigns/{campaign_id}/members/{user_id}"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/invites"): STAFF,
    ("POST", "/campaigns/{campaign_id}/invites"): STAFF,
    ("DELETE", "/campaigns/{campaign_id}/invites/{invite_id}"): STAFF,
    ("GET", "/campaigns/{campaign_id}/invites/{invite_id}/qr.svg"): STAFF,
    ("GET", "/campaigns/{campaign_id}/invites/{invite_id}/link"): STAFF,
    ("GET", "/campaigns/{campaign_id}/audit"): ADMIN_ONLY,
    # ---- supporters and GDPR
    ("POST", "/campaigns/{campaign_id}/supporters"): ADMIN_ONLY,
    ("POST", "/campaigns/{campaign_id}/supporters/import"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/supporters/review"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/supporters/aggregates"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/supporters/{supporter_id}"): ADMIN_ONLY,
    ("PATCH", "/campaigns/{campaign_id}/supporters/{supporter_id}"): ADMIN_ONLY,
    ("DELETE", "/campaigns/{campaign_id}/supporters/{supporter_id}"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/supporters/{supporter_id}/export"): ADMIN_ONLY,
    ("POST", "/campaigns/{campaign_id}/supporters/{supporter_id}/withdraw"): ADMIN_ONLY,
    ("POST", "/campaigns/{campaign_id}/supporters/{supporter_id}/objection"): ADMIN_ONLY,
    ("PUT", "/campaigns/{campaign_id}/privacy-notice"): ADMIN_ONLY,
    ("GET", "/privacy/{campaign_id}"): PUBLIC,
    ("GET", "/privacy/{campaign_id}/qr.svg"): PUBLIC,
    ("POST", "/privacy/{campaign_id}/objection"): PUBLIC,
    # ---- the public form cannot be used against people
    ("GET", "/privacy/{campaign_id}/confirm"): PUBLIC,
    ("POST", "/privacy/{campaign_id}/confirm"): PUBLIC,
    ("GET", "/campaigns/{campaign_id}/door-objections"): ADMIN_ONLY,
    ("POST", "/campaigns/{campaign_id}/door-objections/revert"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/privacy-requests"): ADMIN_ONLY,
    ("POST", "/campaigns/{campaign_id}/privacy-requests/{request_id}/resolve"): ADMIN_ONLY,
    ("GET", "/campaigns/{campaign_id}/supporters"): ADMIN_ONLY,
    # ---- ranking and exports
    ("GET", "/campaigns/{campaign_id}/ranking"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/districts/{code}"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/weights"): PLANNERS,
    ("PUT", "/campaigns/{campaign_id}/weights"): STAFF,
    ("GET", "/campaigns/{campaign_id}/exports/priority-zones.{ext}"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/conformance"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/api"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/collections"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/collections/{collection_id}"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/collections/{collection_id}/schema"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/collections/{collection_id}/items"): PLANNERS,
    ("GET", "/campaigns/{campaign_id}/ogc/collections/{collection_id}/items/{feature_id}"): (
        PLANNERS
    ),
    # ---- turf, assignments, visits
    ("GET", "/campaigns/{campaign_id}/turfs"): STAFF,
    ("POST", "/campaigns/{campaign_id}/turfs"): STAFF,
    ("GET", "/campaigns/{campaign_id}/turfs/{turf_id}"): STAFF,
    ("POST", "/campaigns/{campaign_id}/turfs/{turf_id}/archive"): STAFF,
    ("POST", "/campaigns/{campaign_id}/districts/{code}/cut"): STAFF,
    ("POST", "/campaigns/{campaign_id}/cut"): STAFF,
    ("GET", "/campaigns/{campaign_id}/assignments"): frozenset({ADMIN, ORGANISER, VOLUNTEER}),
    ("POST", "/campaigns/{campaign_id}/assignments"): STAFF,
    ("GET", "/campaigns/{campaign_id}/volunteers"): STAFF,
    ("POST", "/campaigns/{campaign_id}/assignments/{assignment_id}/end"): STAFF,
    ("GET", "/campaigns/{campaign_id}/assignments/{assignment_id}/doors"): frozenset(
        {ADMIN, ORGANISER, VOLUNTEER}
    ),
    ("GET", "/campaigns/{campaign_id}/rounds"): ALL,
    ("POST", "/campaigns/{campaign_id}/rounds"): STAFF,
    ("POST", "/campaigns/{campaign_id}/visits"): frozenset({ADMIN, ORGANISER, VOLUNTEER}),
    ("POST", "/campaigns/{campaign_id}/visits/bulk-not-home"): frozenset(
        {ADMIN, ORGANISER, VOLUNTEER}
    ),
    ("GET", "/campaigns/{campaign_id}/progress"): PLANNERS,
    # ---- maps
    ("GET", "/m/config.json"): PUBLIC,  # which basemap the map pages draw
    # ---- the campaign's own basemap: open map data, same origin
    ("GET", "/basemap/{z}/{x}/{y}.mvt"): PUBLIC,
    ("GET", "/campaigns/{campaign_id}/tiles/doors/{z}/{x}/{y}.mvt"): frozenset(
        {ADMIN, ORGANISER, VOLUNTEER}
    ),
    ("GET", "/campaigns/{campaign_id}/tiles/turfs/{z}/{x}/{y}.mvt"): frozenset(
        {ADMIN, ORGANISER, VOLUNTEER}
    ),
    ("GET", "/campaigns/{campaign_id}/tiles/districts/{z}/{x}/{y}.mvt"): PLANNERS,
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule for a route template, or None when the route is not in the table."""
    return ROUTE_ROLES.get((method.upper(), path))
