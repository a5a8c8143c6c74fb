"""A legal basis per supporter and purpose: consent, or membership / regular contact (art. 9-2-d).

Revision ID: 0029_legal_basis
Revises: 0024_display_name

Until now every ``supporter_consent`` row was a consent given by the person. Files moved in from
a party's CRM (NationBuilder, CiviCRM, DigitaleBox) also hold members, former members and people
in regular contact with the party, whom GDPR art. 9-2-d lets the party process without consent
(CNIL, "Les fichiers de communication politique"). Each row now says its ``basis``:

- ``consent``: as before, given by the person, with its wording, notice, channel and collector;
- ``member``, ``former_member``, ``regular_contact``: no consent, but ``evidence`` (what the file
  showed: membership dates, number and date of donations or events; never a value that identifies
  the person), ``evidence_at`` (the date of that evidence) and ``source`` (the system it came
  from) are required.

The guarantee of migration 0005 stays: the database refuses an active supporter without a
standing, recorded basis (constraint trigger ``supporter_requires_consent``, same name, same
primary-key lookup as 0011). A consent row must still be given by the person.

``supporter_tag``: tags the admin allowed at import (``--tags volunteer,adherent``), one row per
tag, deleted with the supporter.
"""

from alembic import op

from app.migration_helpers import campaign_table

revision = "0029_legal_basis"
down_revision = "0024_display_name"
branch_labels = None
depends_on = None

BASIS = """
ALTER TABLE supporter_consent
    ADD COLUMN basis text NOT NULL DEFAULT 'consent'
        CHECK (basis IN ('consent', 'member', 'former_member', 'regular_contact')),
    ADD COLUMN evidence text CHECK (length(evidence) BETWEEN 1 AND 300),
    ADD COLUMN evidence_at timestamptz,
    ADD COLUMN source text CHECK (length(source) BETWEEN 1 AND 100),
    ALTER COLUMN channel DROP NOT NULL,
    ALTER COLUMN wording_version DROP NOT NULL,
    ALTER COLUMN notice_version DROP NOT NULL;
ALTER TABLE supporter_consent DROP CONSTRAINT supporter_consent_given_by_subject_check;
ALTER TABLE supporter_consent ADD CONSTRAINT supporter_consent_given_by_subject_or_evidence CHECK (
    CASE WHEN basis = 'consent'
         THEN given_by_subject AND channel IS NOT NULL AND wording_version IS NOT NULL
              AND notice_version IS NOT NULL
         ELSE NOT given_by_subject AND evidence IS NOT NULL AND source IS NOT NULL
    END);
"""

BASIS_DOWN = """
DELETE FROM supporter s WHERE NOT EXISTS (
    SELECT 1 FROM supporter_consent c WHERE c.campaign_id = s.campaign_id
      AND c.supporter_id = s.id AND c.basis = 'consent');
DELETE FROM supporter_consent WHERE basis <> 'consent';
ALTER TABLE supporter_consent DROP CONSTRAINT supporter_consent_given_by_subject_or_evidence;
ALTER TABLE supporter_consent
    DROP COLUMN basis, DROP COLUMN evidence, DROP COLUMN evidence_at, DROP COLUMN source,
    ALTER COLUMN channel SET NOT NULL,
    ALTER COLUMN wording_version SET NOT NULL,
    ALTER COLUMN notice_version SET NOT NULL;
ALTER TABLE supporter_consent ADD CONSTRAINT supporter_consent_given_by_subject_check
    CHECK (given_by_subject);
"""

RAISE = """
    RAISE EXCEPTION 'supporter % has no recorded legal basis (no consent given by the person, '
      'no membership or regular contact): record the consent (when, purposes, channel, wording '
      'and notice versions, collector) or the evidence of membership or regular contact '
      '(evidence, source) with the supporter', sid
      USING ERRCODE = '23514', CONSTRAINT = 'supporter_requires_consent';
"""

CHECK = f"""
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
  -- By the primary key only (migration 0011).
  SELECT s.status INTO st FROM supporter s WHERE s.campaign_id = cid AND s.id = sid;
  IF st = 'active' AND NOT EXISTS (
       SELECT 1 FROM supporter_consent c WHERE c.campaign_id = cid AND c.supporter_id = sid
         AND c.withdrawn_at IS NULL AND (c.given_by_subject OR c.basis <> 'consent')) THEN
{RAISE}
  END IF;
  RETURN NULL;
END $$
"""

CHECK_DOWN = """
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
  SELECT s.status INTO st FROM supporter s WHERE s.campaign_id = cid AND s.id = sid;
  IF st = 'active' AND NOT EXISTS (
       SELECT 1 FROM supporter_consent c WHERE c.campaign_id = cid AND c.supporter_id = sid
         AND c.withdrawn_at IS NULL AND c.given_by_subject) THEN
    RAISE EXCEPTION 'supporter % has no consent given by the person: record the consent '
      '(when, purposes, channel, wording and notice versions, collector) with the supporter', sid
      USING ERRCODE = '23514', CONSTRAINT = 'supporter_requires_consent';
  END IF;
  RETURN NULL;
END $$
"""

TAGS = """
CREATE TABLE supporter_tag (
    campaign_id uuid NOT NULL,
    supporter_id uuid NOT NULL,
    tag text NOT NULL CHECK (tag ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
    PRIMARY KEY (campaign_id, supporter_id, tag),
    FOREIGN KEY (campaign_id, supporter_id) REFERENCES supporter (campaign_id, id)
        ON DELETE CASCADE
)
"""


def _run(script: str) -> None:
    for stmt in script.split(";\n"):
        if stmt.strip():
            op.execute(stmt)


def upgrade() -> None:
    """Basis columns and proof rule, the trigger's basis-aware body, the tag table."""
    _run(BASIS)
    op.execute(CHECK)
    op.execute(TAGS)
    campaign_table("supporter_tag", privileges="SELECT, INSERT, DELETE")


def downgrade() -> None:
    """Back to consent only: supporters held without any consent are deleted first, no tags."""
    op.execute("DROP TABLE IF EXISTS supporter_tag")
    op.execute(CHECK_DOWN)
    _run(BASIS_DOWN)
