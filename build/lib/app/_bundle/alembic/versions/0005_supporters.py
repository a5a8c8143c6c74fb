"""Consented supporters, consent records, geocoding index, privacy requests (issue 5).

Revision ID: 0005_supporters
Revises: 0004_turf_visits

Geocoding index: ``geocode_street`` and ``geocode_commune`` are small derived tables (one row per
street / commune of the loaded doors) kept in step with ``address`` by statement-level triggers
with transition tables: a COPY of millions of doors pays one GROUP BY per statement, not a
function call per row. The street table carries the normalised name and a trigram index.
"""

from alembic import op

from app.migration_helpers import campaign_table, grant_sequences, reference_table

revision = "0005_supporters"
down_revision = "0004_turf_visits"
branch_labels = None
depends_on = None

NORMALISE = r"""
CREATE FUNCTION porte_unaccent(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, t) $$;

-- Street / commune names as a comparison key: lower case, no accents, punctuation and hyphens as
-- spaces, common abbreviations expanded, articles dropped ("Allée de la Noë" -> "allee noe").
CREATE FUNCTION porte_norm_name(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
SELECT coalesce(string_agg(w, ' ' ORDER BY i), '') FROM (
  SELECT i, CASE
      WHEN i = 1 AND tok IN ('r', 'ru') THEN 'rue'
      WHEN tok IN ('bd', 'bld', 'boul', 'bvd') THEN 'boulevard'
      WHEN tok IN ('av', 'ave', 'aven') THEN 'avenue'
      WHEN tok IN ('pl', 'plc') THEN 'place'
      WHEN tok IN ('chem', 'che', 'ch', 'chm') THEN 'chemin'
      WHEN tok IN ('all', 'al', 'ale') THEN 'allee'
      WHEN tok IN ('imp', 'impa') THEN 'impasse'
      WHEN tok IN ('rte') THEN 'route'
      WHEN tok IN ('sq') THEN 'square'
      WHEN tok IN ('crs') THEN 'cours'
      WHEN tok IN ('qu', 'qua') THEN 'quai'
      WHEN tok IN ('fg', 'fbg') THEN 'faubourg'
      WHEN tok IN ('res', 'resid') THEN 'residence'
      WHEN tok IN ('lot', 'lotiss') THEN 'lotissement'
      WHEN tok IN ('ham') THEN 'hameau'
      WHEN tok IN ('pas', 'pass') THEN 'passage'
      WHEN tok IN ('prom') THEN 'promenade'
      WHEN tok IN ('rpt') THEN 'rond point'
      WHEN tok IN ('st') THEN 'saint'
      WHEN tok IN ('ste') THEN 'sainte'
      WHEN tok IN ('gal', 'gen', 'gl') THEN 'general'
      WHEN tok IN ('mal', 'marech') THEN 'marechal'
      WHEN tok IN ('pdt', 'pres') THEN 'president'
      WHEN tok IN ('dr', 'doct') THEN 'docteur'
      WHEN tok IN ('prof') THEN 'professeur'
      WHEN tok IN ('cdt', 'cmdt') THEN 'commandant'
      WHEN tok IN ('lt') THEN 'lieutenant'
      WHEN tok IN ('cne') THEN 'capitaine'
      WHEN tok IN ('mgr') THEN 'monseigneur'
      ELSE tok END AS w
  FROM unnest(regexp_split_to_array(
         btrim(regexp_replace(lower(porte_unaccent(t)), '[^a-z0-9]+', ' ', 'g')), ' '))
       WITH ORDINALITY AS u(tok, i)
) x
WHERE w <> '' AND w NOT IN ('de', 'du', 'des', 'la', 'le', 'les', 'l', 'd', 'au', 'aux', 'et')
$$;
"""

INDEX_TABLES = """
CREATE TABLE geocode_street (
    code_insee text NOT NULL,
    nom_voie text NOT NULL,
    voie_norm text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (code_insee, nom_voie)
);
CREATE INDEX geocode_street_norm ON geocode_street (code_insee, voie_norm);
CREATE INDEX geocode_street_trgm ON geocode_street USING gin (voie_norm gin_trgm_ops);

CREATE TABLE geocode_commune (
    code_insee text NOT NULL,
    code_postal text NOT NULL,  -- '' when the doors carry no postcode
    nom_commune text NOT NULL,
    commune_norm text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (code_insee, code_postal, nom_commune)
);
CREATE INDEX geocode_commune_norm ON geocode_commune (commune_norm);
CREATE INDEX geocode_commune_postal ON geocode_commune (code_postal);
CREATE INDEX geocode_commune_dept ON geocode_commune (left(code_insee, 2));

-- Doors of one street in number order: exact number and same-side neighbours.
CREATE INDEX address_geocode_number ON address (code_insee, nom_voie, numero);

CREATE FUNCTION porte_geocode_index_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO geocode_street AS s (code_insee, nom_voie, voie_norm, n)
  SELECT code_insee, nom_voie, porte_norm_name(nom_voie), count(*)
  FROM new_rows WHERE code_insee IS NOT NULL AND nom_voie IS NOT NULL GROUP BY 1, 2
  ON CONFLICT (code_insee, nom_voie) DO UPDATE SET n = s.n + excluded.n;
  INSERT INTO geocode_commune AS c (code_insee, code_postal, nom_commune, commune_norm, n)
  SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
         porte_norm_name(coalesce(nom_commune, '')), count(*)
  FROM new_rows WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3
  ON CONFLICT (code_insee, code_postal, nom_commune) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;

CREATE FUNCTION porte_geocode_index_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE geocode_street s SET n = s.n - o.n
  FROM (SELECT code_insee, nom_voie, count(*) AS n FROM old_rows GROUP BY 1, 2) o
  WHERE s.code_insee = o.code_insee AND s.nom_voie = o.nom_voie;
  DELETE FROM geocode_street WHERE n <= 0;
  UPDATE geocode_commune c SET n = c.n - o.n
  FROM (SELECT code_insee, coalesce(code_postal, '') AS code_postal,
               coalesce(nom_commune, '') AS nom_commune, count(*) AS n
        FROM old_rows GROUP BY 1, 2, 3) o
  WHERE c.code_insee = o.code_insee AND c.code_postal = o.code_postal
    AND c.nom_commune = o.nom_commune;
  DELETE FROM geocode_commune WHERE n <= 0;
  RETURN NULL;
END $$;

CREATE FUNCTION porte_geocode_index_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE geocode_street, geocode_commune;
  RETURN NULL;
END $$;

CREATE TRIGGER geocode_index_insert AFTER INSERT ON address
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porte_geocode_index_add();
CREATE TRIGGER geocode_index_delete AFTER DELETE ON address
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION porte_geocode_index_remove();
CREATE TRIGGER geocode_index_truncate AFTER TRUNCATE ON address
  FOR EACH STATEMENT EXECUTE FUNCTION porte_geocode_index_truncate();
"""

# An UPDATE needs both transition tables; two triggers (old rows out, then new rows in).
UPDATE_TRIGGERS = """
CREATE TRIGGER geocode_index_update_old AFTER UPDATE ON address
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION porte_geocode_index_remove();
CREATE TRIGGER geocode_index_update_new AFTER UPDATE ON address
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION porte_geocode_index_add();
"""

BACKFILL = """
INSERT INTO geocode_street (code_insee, nom_voie, voie_norm, n)
SELECT code_insee, nom_voie, porte_norm_name(nom_voie), count(*) FROM address
WHERE code_insee IS NOT NULL AND nom_voie IS NOT NULL GROUP BY 1, 2;
INSERT INTO geocode_commune (code_insee, code_postal, nom_commune, commune_norm, n)
SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
       porte_norm_name(coalesce(nom_commune, '')), count(*)
FROM address WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3;
"""

SUPPORTERS = """
CREATE TABLE supporter (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
    key_id text,
    name_enc bytea,
    email_enc bytea,
    phone_enc bytea,
    address_enc bytea,
    notes_enc bytea,
    email_hmac bytea,
    phone_hmac bytea,
    address_id bigint,  -- a door of `address`; no FK so that doors can be reloaded
    geom geometry(Point, 4326),
    geocode_level text NOT NULL DEFAULT 'none' CHECK (geocode_level IN
        ('housenumber', 'interpolated', 'street', 'commune', 'none', 'manual')),
    geocode_score real,
    geocode_note text,  -- why a row needs review; never personal data
    last_contact_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    PRIMARY KEY (campaign_id, id),
    CONSTRAINT supporter_withdrawn_has_no_identity CHECK (status = 'active' OR (
        name_enc IS NULL AND email_enc IS NULL AND phone_enc IS NULL AND address_enc IS NULL
        AND notes_enc IS NULL AND geom IS NULL AND address_id IS NULL
        AND withdrawn_at IS NOT NULL)),
    CONSTRAINT supporter_ciphertext_has_key CHECK (key_id IS NOT NULL OR (
        name_enc IS NULL AND email_enc IS NULL AND phone_enc IS NULL AND address_enc IS NULL
        AND notes_enc IS NULL))
);
CREATE UNIQUE INDEX supporter_email_dup ON supporter (campaign_id, email_hmac)
    WHERE status = 'active' AND email_hmac IS NOT NULL;
CREATE UNIQUE INDEX supporter_phone_dup ON supporter (campaign_id, phone_hmac)
    WHERE status = 'active' AND phone_hmac IS NOT NULL;
CREATE INDEX supporter_email_hmac ON supporter (campaign_id, email_hmac);
CREATE INDEX supporter_geom ON supporter USING gist (geom) WHERE status = 'active';
CREATE INDEX supporter_review ON supporter (campaign_id, geocode_level) WHERE status = 'active';
CREATE INDEX supporter_key ON supporter (key_id);
CREATE INDEX supporter_contact ON supporter (campaign_id, last_contact_at);

CREATE TABLE supporter_consent (
    campaign_id uuid NOT NULL,
    supporter_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('contact', 'mapping', 'volunteering', 'newsletter')),
    given_at timestamptz NOT NULL,
    given_by_subject boolean NOT NULL CHECK (given_by_subject),
    channel text NOT NULL CHECK (channel IN ('door', 'form', 'event', 'membership')),
    wording_version text NOT NULL CHECK (length(wording_version) BETWEEN 1 AND 100),
    notice_version text NOT NULL CHECK (length(notice_version) BETWEEN 1 AND 100),
    collected_by text NOT NULL CHECK (length(collected_by) BETWEEN 1 AND 200),
    recorded_by uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    withdrawal_channel text,
    PRIMARY KEY (campaign_id, supporter_id, purpose),
    FOREIGN KEY (campaign_id, supporter_id) REFERENCES supporter (campaign_id, id)
        ON DELETE CASCADE,
    CHECK (given_at <= recorded_at + interval '1 day')
);

-- No active supporter without a standing consent given by the person. Checked at the end of each
-- statement: insert a supporter and its consents in ONE statement (a data-modifying CTE, as the
-- service does), or run `SET CONSTRAINTS supporter_requires_consent DEFERRED` first to insert
-- them in two statements of one transaction (then checked at commit). Constraint triggers are
-- per row; deferring thousands of them to SET CONSTRAINTS ... IMMEDIATE is very slow, at the end
-- of a statement it is not.
CREATE FUNCTION porte_supporter_consent_check() RETURNS trigger LANGUAGE plpgsql AS $$
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
    RAISE EXCEPTION 'supporter % has no consent given by the person: record the consent '
      '(when, purposes, channel, wording and notice versions, collector) with the supporter', sid
      USING ERRCODE = '23514', CONSTRAINT = 'supporter_requires_consent';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER supporter_requires_consent AFTER INSERT OR UPDATE OF status
  ON supporter DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW
  EXECUTE FUNCTION porte_supporter_consent_check();
CREATE CONSTRAINT TRIGGER supporter_consent_kept AFTER UPDATE OR DELETE
  ON supporter_consent DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW
  EXECUTE FUNCTION porte_supporter_consent_check();

-- Requests received through the public privacy page (objection, withdrawal). The typed address
-- of an objection that could not be placed on a door is kept encrypted until an admin resolves it.
CREATE TABLE privacy_request (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('objection', 'withdrawal')),
    received_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL CHECK (status IN ('pending', 'done')),
    outcome text NOT NULL,
    key_id text,
    address_enc bytea,
    resolved_at timestamptz,
    resolved_by uuid,
    PRIMARY KEY (campaign_id, id),
    CHECK (address_enc IS NULL OR key_id IS NOT NULL)
);
CREATE INDEX privacy_request_key ON privacy_request (key_id) WHERE address_enc IS NOT NULL;

-- What the public privacy notice says about the controller (GDPR art. 13/14).
CREATE TABLE campaign_privacy (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    controller text NOT NULL CHECK (length(controller) BETWEEN 1 AND 300),
    contact_email text NOT NULL CHECK (contact_email LIKE '%_@_%'),
    postal_address text,
    dpo_contact text,
    notice_version text NOT NULL DEFAULT 'v1',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id)
);

-- What `porte purge` deleted, as anonymous counts (no identity, no address).
CREATE TABLE retention_archive (
    campaign_id uuid NOT NULL REFERENCES campaign(id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    purged_at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    counts jsonb NOT NULL,
    PRIMARY KEY (campaign_id, id)
);
"""


def _run(script: str) -> None:
    """Execute a script statement by statement (``;`` at end of line, outside ``$$`` bodies)."""
    buf: list[str] = []
    in_body = False
    for line in script.splitlines():
        buf.append(line)
        if line.count("$$") % 2:
            in_body = not in_body
        if not in_body and line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";")
            if stmt and not all(ln.strip().startswith("--") for ln in stmt.splitlines()):
                op.execute(stmt)
            buf = []


def upgrade() -> None:
    _run(NORMALISE)
    _run(INDEX_TABLES)
    _run(UPDATE_TRIGGERS)
    _run(BACKFILL)
    reference_table("geocode_street")
    reference_table("geocode_commune")
    _run(SUPPORTERS)
    campaign_table("supporter")
    campaign_table("supporter_consent")
    campaign_table("privacy_request")
    campaign_table("retention_archive", privileges="SELECT")
    campaign_table("campaign_privacy")
    grant_sequences()


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS campaign_privacy")
    op.execute("DROP TABLE IF EXISTS retention_archive")
    op.execute("DROP TABLE IF EXISTS privacy_request")
    op.execute("DROP TABLE IF EXISTS supporter_consent")
    op.execute("DROP TABLE IF EXISTS supporter")
    op.execute("DROP FUNCTION IF EXISTS porte_supporter_consent_check()")
    for trig in (
        "geocode_index_insert",
        "geocode_index_delete",
        "geocode_index_truncate",
        "geocode_index_update_old",
        "geocode_index_update_new",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trig} ON address")
    op.execute("DROP FUNCTION IF EXISTS porte_geocode_index_add()")
    op.execute("DROP FUNCTION IF EXISTS porte_geocode_index_remove()")
    op.execute("DROP FUNCTION IF EXISTS porte_geocode_index_truncate()")
    op.execute("DROP INDEX IF EXISTS address_geocode_number")
    op.execute("DROP TABLE IF EXISTS geocode_commune")
    op.execute("DROP TABLE IF EXISTS geocode_street")
    op.execute("DROP FUNCTION IF EXISTS porte_norm_name(text)")
    op.execute("DROP FUNCTION IF EXISTS porte_unaccent(text)")
