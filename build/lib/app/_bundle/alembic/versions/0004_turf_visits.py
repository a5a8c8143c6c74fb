"""Turf, assignments, rounds, visits, door flags (issue 7).

Every table is campaign data: ``campaign_id`` leads the primary key and row-level security
scopes it to the transaction's campaign.

Revision ID: 0004_turf_visits
Revises: 0003_access
"""

from alembic import op

from app.migration_helpers import campaign_table, grant_sequences

revision = "0004_turf_visits"
down_revision = "0003_access"
branch_labels = None
depends_on = None

OUTCOMES = ("not_home", "talked", "refused", "moved", "no_access", "do_not_knock")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE canvass_round (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            number integer NOT NULL CHECK (number >= 1),
            name text CHECK (length(name) <= 200),
            started_at timestamptz NOT NULL DEFAULT now(),
            created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            PRIMARY KEY (campaign_id, id),
            UNIQUE (campaign_id, number)
        )
        """
    )
    campaign_table("canvass_round", privileges="SELECT, INSERT")

    op.execute(
        """
        CREATE TABLE turf (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            district_code text,
            geom geometry(Geometry, 4326) NOT NULL
                CHECK (GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON')),
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
            origin text NOT NULL DEFAULT 'drawn' CHECK (origin IN ('drawn', 'cut')),
            door_count integer NOT NULL DEFAULT 0,
            households real NOT NULL DEFAULT 0,
            walk_length_m real,
            compactness real,
            created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            archived_at timestamptz,
            PRIMARY KEY (campaign_id, id)
        )
        """
    )
    op.execute("CREATE INDEX turf_geom ON turf USING gist (geom) WHERE status = 'active'")
    op.execute("CREATE INDEX turf_district ON turf (campaign_id, district_code, status)")
    campaign_table("turf", privileges="SELECT, INSERT, UPDATE")

    # A door belongs to at most one active turf of a campaign (the partial unique index holds
    # it even against two organisers drawing at the same moment).
    op.execute(
        """
        CREATE TABLE turf_door (
            campaign_id uuid NOT NULL,
            turf_id uuid NOT NULL,
            address_id bigint NOT NULL REFERENCES address(id),
            seq integer NOT NULL,
            active boolean NOT NULL DEFAULT true,
            PRIMARY KEY (campaign_id, turf_id, address_id),
            FOREIGN KEY (campaign_id, turf_id) REFERENCES turf(campaign_id, id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX turf_door_one_active_turf ON turf_door (campaign_id, address_id) "
        "WHERE active"
    )
    campaign_table("turf_door", privileges="SELECT, INSERT, UPDATE")

    op.execute(
        """
        CREATE TABLE assignment (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            turf_id uuid NOT NULL,
            volunteer_user_id uuid REFERENCES app_user(id) ON DELETE SET NULL,
            invite_id uuid,
            starts_at timestamptz NOT NULL DEFAULT now(),
            ends_at timestamptz,
            created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            ended_at timestamptz,
            PRIMARY KEY (campaign_id, id),
            FOREIGN KEY (campaign_id, turf_id) REFERENCES turf(campaign_id, id) ON DELETE CASCADE,
            FOREIGN KEY (campaign_id, invite_id) REFERENCES invite(campaign_id, id)
                ON DELETE SET NULL (invite_id),
            CHECK (ends_at IS NULL OR ends_at > starts_at)
        )
        """
    )
    op.execute("CREATE INDEX assignment_turf ON assignment (campaign_id, turf_id)")
    op.execute(
        "CREATE INDEX assignment_volunteer ON assignment (campaign_id, volunteer_user_id) "
        "WHERE volunteer_user_id IS NOT NULL"
    )
    campaign_table("assignment", privileges="SELECT, INSERT, UPDATE")
    # invite.assignment_id was created without a foreign key in 0003 (assignment did not exist).
    op.execute(
        "ALTER TABLE invite ADD CONSTRAINT invite_assignment_fk FOREIGN KEY "
        "(campaign_id, assignment_id) REFERENCES assignment(campaign_id, id) "
        "ON DELETE SET NULL (assignment_id)"
    )

    # The door list frozen when the turf was assigned: what the volunteer was asked to knock.
    op.execute(
        """
        CREATE TABLE assignment_door (
            campaign_id uuid NOT NULL,
            assignment_id uuid NOT NULL,
            address_id bigint NOT NULL REFERENCES address(id),
            seq integer NOT NULL,
            PRIMARY KEY (campaign_id, assignment_id, address_id),
            FOREIGN KEY (campaign_id, assignment_id) REFERENCES assignment(campaign_id, id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX assignment_door_address ON assignment_door (campaign_id, address_id)")
    campaign_table("assignment_door", privileges="SELECT, INSERT")

    outcomes = ", ".join(f"'{o}'" for o in OUTCOMES)
    # id is the phone's own UUID: replays of an offline queue hit the primary key, never double.
    # No free-text note and no opinion column, on purpose (sensitive data with no legal basis).
    op.execute(
        f"""
        CREATE TABLE visit (
            campaign_id uuid NOT NULL,
            id uuid NOT NULL,
            address_id bigint NOT NULL REFERENCES address(id),
            assignment_id uuid,
            round_id uuid NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ({outcomes})),
            flat text CHECK (length(flat) BETWEEN 1 AND 20),
            visited_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            volunteer_user_id uuid REFERENCES app_user(id) ON DELETE SET NULL,
            invite_id uuid,
            PRIMARY KEY (campaign_id, id),
            FOREIGN KEY (campaign_id, assignment_id) REFERENCES assignment(campaign_id, id)
                ON DELETE CASCADE,
            FOREIGN KEY (campaign_id, round_id) REFERENCES canvass_round(campaign_id, id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX visit_round_door ON visit (campaign_id, round_id, address_id)")
    op.execute("CREATE INDEX visit_assignment ON visit (campaign_id, assignment_id)")
    op.execute("CREATE INDEX visit_door ON visit (campaign_id, address_id)")
    # Retention (`porte purge`) deletes visits after the vote.
    campaign_table("visit", privileges="SELECT, INSERT, DELETE")

    # Residents who asked not to be visited again: an address and a date, no identity.
    op.execute(
        """
        CREATE TABLE door_flag (
            campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
            address_id bigint NOT NULL REFERENCES address(id),
            kind text NOT NULL DEFAULT 'do_not_knock' CHECK (kind IN ('do_not_knock')),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (campaign_id, address_id)
        )
        """
    )
    campaign_table("door_flag", privileges="SELECT, INSERT, DELETE")
    grant_sequences()


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS door_flag")
    op.execute("DROP TABLE IF EXISTS visit")
    op.execute("DROP TABLE IF EXISTS assignment_door")
    op.execute("ALTER TABLE IF EXISTS invite DROP CONSTRAINT IF EXISTS invite_assignment_fk")
    op.execute("DROP TABLE IF EXISTS assignment")
    op.execute("DROP TABLE IF EXISTS turf_door")
    op.execute("DROP TABLE IF EXISTS turf")
    op.execute("DROP TABLE IF EXISTS canvass_round")
