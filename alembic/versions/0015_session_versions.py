"""Sign-ins that end at once: a per-account token version, and refresh chains with an end.

``app_user.token_version`` is written into every access token (claim ``ver``) and compared on
every request where the caller's standing is already read: ``porte_enter`` (campaign routes, the
map tiles' hot path) and ``app.security.current_user_id`` (account routes). Bumping it ends every
access token of the account at its next request. It is bumped

- by the trigger ``app_user_sign_ins_end`` whenever the password changes, two-factor sign-in is
  turned off or the account is disabled (by any path: API, ``porte admin``, the demo reset),
  which also revokes every refresh token of the account;
- by logout (``app.services.access.auth.logout``), which revokes the sign-in's refresh chain: the
  account's other sign-ins keep their refresh tokens and get a new access token on their next
  refresh.

``porte_enter`` gains the version argument and a ``session_ended`` column: a stale token gets
one row with ``session_ended = true`` and nothing else, whatever the campaign (401, "sign in
again"), so it learns nothing about campaigns.

``refresh_token.session_started_at``: when the sign-in began, copied along the chain at each
rotation; a chain ends ``PORTE_SESSION_MAX_DAYS`` after it, however often it is refreshed.

Revision ID: 0015_session_versions
Revises: 0017_smaller_holes
"""

from alembic import op

revision = "0015_session_versions"
down_revision = "0023_supporter_cells"
branch_labels = None
depends_on = None

ENTER = """
CREATE FUNCTION porte_enter(p_campaign uuid, p_user uuid, p_invite uuid, p_version integer)
RETURNS TABLE (role text, assignment_id uuid, k_threshold integer, election_date date,
               require_2fa boolean, doors_version bigint, session_ended boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- The tenant for the rest of the transaction (row-level security reads these).
    PERFORM set_config('porte.campaign_id', p_campaign::text, true),
            set_config('porte.user_id', coalesce(p_user::text, ''), true);
    IF p_invite IS NOT NULL THEN
        RETURN QUERY
        SELECT 'volunteer'::text, i.assignment_id, c.k_threshold, c.election_date,
               c.require_2fa, coalesce(ch.doors, 0), false
        FROM invite i
        JOIN campaign c ON c.id = i.campaign_id
        LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
        WHERE i.campaign_id = p_campaign AND i.id = p_invite
          AND i.revoked_at IS NULL AND i.expires_at > now();
    ELSIF NOT EXISTS (SELECT 1 FROM app_user u WHERE u.id = p_user AND u.is_active
                      AND u.token_version = p_version) THEN
        -- The token's sign-in has ended (logout, new password, 2FA off, account disabled).
        RETURN QUERY SELECT NULL::text, NULL::uuid, NULL::integer, NULL::date, NULL::boolean,
                            NULL::bigint, true;
    ELSE
        RETURN QUERY
        SELECT m.role, NULL::uuid, c.k_threshold, c.election_date, c.require_2fa,
               coalesce(ch.doors, 0), false
        FROM membership m
        JOIN campaign c ON c.id = m.campaign_id
        LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
        WHERE m.campaign_id = p_campaign AND m.user_id = p_user;
    END IF;
END $$
"""

# 0009's function, restored by the downgrade.
ENTER_0009 = """
CREATE FUNCTION porte_enter(p_campaign uuid, p_user uuid, p_invite uuid)
RETURNS TABLE (role text, assignment_id uuid, k_threshold integer, election_date date,
               require_2fa boolean, doors_version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('porte.campaign_id', p_campaign::text, true),
            set_config('porte.user_id', coalesce(p_user::text, ''), true);
    IF p_invite IS NOT NULL THEN
        RETURN QUERY
        SELECT 'volunteer'::text, i.assignment_id, c.k_threshold, c.election_date,
               c.require_2fa, coalesce(ch.doors, 0)
        FROM invite i
        JOIN campaign c ON c.id = i.campaign_id
        LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
        WHERE i.campaign_id = p_campaign AND i.id = p_invite
          AND i.revoked_at IS NULL AND i.expires_at > now();
    ELSE
        RETURN QUERY
        SELECT m.role, NULL::uuid, c.k_threshold, c.election_date, c.require_2fa,
               coalesce(ch.doors, 0)
        FROM membership m
        JOIN app_user u ON u.id = m.user_id
        JOIN campaign c ON c.id = m.campaign_id
        LEFT JOIN campaign_change ch ON ch.campaign_id = c.id
        WHERE m.campaign_id = p_campaign AND m.user_id = p_user AND u.is_active;
    END IF;
END $$
"""

# A new password, two-factor turned off or a disabled account end every sign-in of the account:
# its access tokens (version) at their next request, its refresh tokens at once.
BUMP = """
CREATE FUNCTION porte_sign_ins_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR (OLD.totp_enabled AND NOT NEW.totp_enabled)
       OR (OLD.is_active AND NOT NEW.is_active) THEN
        NEW.token_version := OLD.token_version + 1;
    END IF;
    RETURN NEW;
END $$
"""
REVOKE = """
CREATE FUNCTION porte_refresh_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE refresh_token SET revoked_at = now()
    WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    """Token versions, the triggers that bump them, porte_enter with the version, chain starts."""
    op.execute("ALTER TABLE app_user ADD COLUMN token_version integer NOT NULL DEFAULT 0")
    op.execute(BUMP)
    op.execute(
        "CREATE TRIGGER app_user_sign_ins_end BEFORE UPDATE OF password_hash, totp_enabled, "
        "is_active ON app_user FOR EACH ROW EXECUTE FUNCTION porte_sign_ins_end()"
    )
    op.execute(REVOKE)
    op.execute(
        "CREATE TRIGGER app_user_refresh_revoke AFTER UPDATE OF password_hash, totp_enabled, "
        "is_active ON app_user FOR EACH ROW WHEN (NEW.password_hash IS DISTINCT FROM "
        "OLD.password_hash OR (OLD.totp_enabled AND NOT NEW.totp_enabled) "
        "OR (OLD.is_active AND NOT NEW.is_active)) EXECUTE FUNCTION porte_refresh_revoke()"
    )

    op.execute("ALTER TABLE refresh_token ADD COLUMN session_started_at timestamptz")
    op.execute(
        "UPDATE refresh_token r SET session_started_at = f.started FROM ("
        "  SELECT family_id, min(created_at) AS started FROM refresh_token GROUP BY family_id"
        ") f WHERE f.family_id = r.family_id"
    )
    op.execute(
        "ALTER TABLE refresh_token ALTER COLUMN session_started_at SET NOT NULL, "
        "ALTER COLUMN session_started_at SET DEFAULT now()"
    )

    op.execute("DROP FUNCTION porte_enter(uuid, uuid, uuid)")
    op.execute(ENTER)


def downgrade() -> None:
    """Back to 0009's porte_enter; no versions, no chain starts."""
    op.execute("DROP FUNCTION IF EXISTS porte_enter(uuid, uuid, uuid, integer)")
    op.execute(ENTER_0009)
    op.execute("ALTER TABLE refresh_token DROP COLUMN IF EXISTS session_started_at")
    op.execute("DROP TRIGGER IF EXISTS app_user_refresh_revoke ON app_user")
    op.execute("DROP FUNCTION IF EXISTS porte_refresh_revoke()")
    op.execute("DROP TRIGGER IF EXISTS app_user_sign_ins_end ON app_user")
    op.execute("DROP FUNCTION IF EXISTS porte_sign_ins_end()")
    op.execute("ALTER TABLE app_user DROP COLUMN IF EXISTS token_version")
