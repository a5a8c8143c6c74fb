"""Smaller holes (issue 12 §6): short texts, visit retention cap.

- ``visit.flat`` was any text up to 20 characters ("vote RN" was stored): it is now a flat's
  designation only, 1 to 6 capital letters, digits or hyphens with at least one digit, or one
  letter alone (the rule of ``app.schemas.FLAT_PATTERN``). Existing values are put in capitals;
  those that still do not fit are set to NULL (the visit itself is kept).
- ``audit_event.request_id`` and ``audit_event.client`` are the only other short texts a
  volunteer's phone (or anyone's client) can get stored: the request id from the X-Request-ID
  header, the address from the connection or the proxy's headers. They are held to the
  characters of an id and of an address (no spaces: no sentences); other existing values are
  set to NULL. (Outcomes and door-flag kinds were already CHECKed lists.)
- ``campaign.visit_retention_date`` could be 2099. A one-row ``retention_policy`` (owner-written,
  read by the service) holds the longest delay after the election (default 1 month 7 days,
  at most 6 months, ``PORTE_VISIT_RETENTION_MAX_MONTHS`` / ``_DAYS`` applied by ``porte db
  migrate`` and ``porte purge``); a trigger refuses a date before the election or after
  election + that delay, whoever writes. Existing dates beyond it are brought back to it.

Revision ID: 0017_smaller_holes
Revises: 0022_scale
"""

from alembic import op

from app.migration_helpers import APP_ROLE

revision = "0017_smaller_holes"
down_revision = "0022_scale"
branch_labels = None
depends_on = None

# Frozen copies of the application's rules as of this revision (app.schemas, app.services.access.
# audit); tests/test_smaller_holes.py checks that the API and the database agree.
FLAT = "^([A-Z]|[-A-Z]{0,5}[0-9][-0-9A-Z]{0,5})$"
REQUEST_ID = "^[-A-Za-z0-9._]{1,64}$"
CLIENT = "^[-0-9A-Za-z:._%]{1,100}$"
DEFAULT_VISIT_MAX = "1 month 7 days"
CEILING = "6 months"


def upgrade() -> None:
    # ---- visit.flat: a flat's designation, never a note
    op.execute("UPDATE visit SET flat = upper(btrim(flat)) WHERE flat IS NOT NULL")
    op.execute(
        f"UPDATE visit SET flat = NULL WHERE flat IS NOT NULL "
        f"AND NOT (length(flat) <= 6 AND flat ~ '{FLAT}')"
    )
    # visit has deferred triggers (door versions): fire the updates' events before ALTER TABLE.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.execute("ALTER TABLE visit DROP CONSTRAINT IF EXISTS visit_flat_check")
    op.execute(
        "ALTER TABLE visit ADD CONSTRAINT visit_flat_designation CHECK "
        f"(flat IS NULL OR (length(flat) <= 6 AND flat ~ '{FLAT}'))"
    )

    # ---- audit_event: request id and client address as ids, not texts
    op.execute(f"UPDATE audit_event SET request_id = NULL WHERE request_id !~ '{REQUEST_ID}'")
    op.execute(f"UPDATE audit_event SET client = NULL WHERE client !~ '{CLIENT}'")
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.execute(
        "ALTER TABLE audit_event ADD CONSTRAINT audit_event_request_id_token CHECK "
        f"(request_id ~ '{REQUEST_ID}')"
    )
    op.execute(
        f"ALTER TABLE audit_event ADD CONSTRAINT audit_event_client_token CHECK "
        f"(client ~ '{CLIENT}')"
    )

    # ---- visit retention: at most election + the policy's delay
    op.execute(
        f"""
        CREATE TABLE retention_policy (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            visit_max interval NOT NULL DEFAULT '{DEFAULT_VISIT_MAX}'
                CHECK (visit_max >= interval '1 month' AND visit_max <= interval '{CEILING}'),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("INSERT INTO retention_policy DEFAULT VALUES")
    op.execute(f"GRANT SELECT ON retention_policy TO {APP_ROLE}")
    op.execute(
        f"""
        CREATE FUNCTION porte_visit_retention_cap(election date) RETURNS date
        LANGUAGE sql STABLE AS $$
          SELECT CAST(election + coalesce(
            (SELECT visit_max FROM retention_policy), interval '{DEFAULT_VISIT_MAX}') AS date)
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION porte_check_visit_retention() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          cap date := porte_visit_retention_cap(NEW.election_date);
        BEGIN
          IF NEW.visit_retention_date IS NOT NULL
             AND (NEW.visit_retention_date < NEW.election_date
                  OR NEW.visit_retention_date > cap) THEN
            RAISE EXCEPTION 'visit_retention_date % is outside % .. % (election date .. '
              'election date + the retention policy''s longest delay)',
              NEW.visit_retention_date, NEW.election_date, cap
              USING ERRCODE = '23514', CONSTRAINT = 'campaign_visit_retention_cap';
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "UPDATE campaign SET visit_retention_date = porte_visit_retention_cap(election_date) "
        "WHERE visit_retention_date > porte_visit_retention_cap(election_date)"
    )
    op.execute(
        "UPDATE campaign SET visit_retention_date = election_date "
        "WHERE visit_retention_date < election_date"
    )
    op.execute(
        "CREATE TRIGGER campaign_visit_retention_cap "
        "BEFORE INSERT OR UPDATE OF election_date, visit_retention_date ON campaign "
        "FOR EACH ROW EXECUTE FUNCTION porte_check_visit_retention()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS campaign_visit_retention_cap ON campaign")
    op.execute("DROP FUNCTION IF EXISTS porte_check_visit_retention()")
    op.execute("DROP FUNCTION IF EXISTS porte_visit_retention_cap(date)")
    op.execute("DROP TABLE IF EXISTS retention_policy")
    op.execute("ALTER TABLE audit_event DROP CONSTRAINT IF EXISTS audit_event_client_token")
    op.execute("ALTER TABLE audit_event DROP CONSTRAINT IF EXISTS audit_event_request_id_token")
    op.execute("ALTER TABLE visit DROP CONSTRAINT IF EXISTS visit_flat_designation")
    op.execute(
        "ALTER TABLE visit ADD CONSTRAINT visit_flat_check CHECK (length(flat) BETWEEN 1 AND 20)"
    )
