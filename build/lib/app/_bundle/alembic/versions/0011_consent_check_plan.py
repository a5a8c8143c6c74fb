"""The consent check stays on the primary key, whatever the planner's statistics say.

``porte_supporter_consent_check()`` (migration 0005) looked the supporter up with
``campaign_id = … AND id = … AND status = 'active'``. That condition matches the partial index
``supporter_review (campaign_id, geocode_level) WHERE status = 'active'``, and on tables whose
statistics predate a big import (a fresh install, a first member file) the planner chose it: each
inserted row then scanned the campaign's active supporters, so an import was quadratic (12 minutes
for 60,000 rows through the service's role, measured). The lookup now reads the status by the
primary key and tests it in PL/pgSQL, which no partial index can serve; the rule is unchanged.

Revision ID: 0011_consent_check_plan
Revises: 0010_totp_at_rest
"""

from alembic import op

revision = "0011_consent_check_plan"
down_revision = "0010_totp_at_rest"
branch_labels = None
depends_on = None

RAISE = """
    RAISE EXCEPTION 'supporter % has no consent given by the person: record the consent '
      '(when, purposes, channel, wording and notice versions, collector) with the supporter', sid
      USING ERRCODE = '23514', CONSTRAINT = 'supporter_requires_consent';
"""

NEW = f"""
CREATE OR REPLACE FUNCTION porte_supporter_consent_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cid uuid;
  sid uuid;
  st text;
BEGIN
  IF TG_TABLE_NAME = 'supporter' THEN
    cid := NEW.campaign_id; sid := NEW.id;
  ELSE
    cid := OLD.campaign_id; sid := OLD.supporter_id;
  END IF;
  -- By the primary key only (no status in the condition: see the revision's docstring).
  SELECT s.status INTO st FROM supporter s WHERE s.campaign_id = cid AND s.id = sid;
  IF st = 'active' AND NOT EXISTS (
       SELECT 1 FROM supporter_consent c WHERE c.campaign_id = cid AND c.supporter_id = sid
         AND c.withdrawn_at IS NULL AND c.given_by_subject) THEN
{RAISE}
  END IF;
  RETURN NULL;
END $$
"""

OLD = f"""
CREATE OR REPLACE FUNCTION porte_supporter_consent_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cid uuid;
  sid uuid;
BEGIN
  IF TG_TABLE_NAME = 'supporter' THEN
    cid := NEW.campaign_id; sid := NEW.id;
  ELSE
    cid := OLD.campaign_id; sid := OLD.supporter_id;
  END IF;
  IF EXISTS (SELECT 1 FROM supporter s WHERE s.campaign_id = cid AND s.id = sid
             AND s.status = 'active')
     AND NOT EXISTS (SELECT 1 FROM supporter_consent c WHERE c.campaign_id = cid
             AND c.supporter_id = sid AND c.withdrawn_at IS NULL AND c.given_by_subject) THEN
{RAISE}
  END IF;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    """Replace the consent check's body (same rule, primary-key lookup)."""
    op.execute(NEW)


def downgrade() -> None:
    """Restore migration 0005's body."""
    op.execute(OLD)
