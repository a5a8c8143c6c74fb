"""The local geocoder on all of France (issue 18): communes found despite typos, former communes,
arrondissements, streets typed without their type.

Revision ID: 0018_geocoder_france
Revises: 0016_member_invitations

- ``address`` keeps the former commune of a door (BAN ``code_insee_ancienne_commune`` /
  ``nom_ancienne_commune``, BAL ``commune_deleguee_insee`` / ``commune_deleguee_nom``): people
  still write "Saint-Germain-sur-Moine" for a door of Sèvremoine.
- ``geocode_commune`` becomes the table of names a commune is known by, one row per commune,
  postcode and former commune of the loaded doors, with the comparison keys computed by
  PostgreSQL (``porte_norm_city``: articles, Saint/St, hyphens, "1er arrondissement" -> "1"),
  the city of an arrondissement (Paris, Lyon, Marseille: ``porte_city_code``) and the postal
  département; exact names by b-tree, misspelt names within a département by a scan of its few
  hundred rows, elsewhere among the names of about the same length sharing their first or last
  three letters (b-tree).
- ``geocode_street`` gets the name without its street type (``voie_core``): "12 Maurice Ravel"
  finds "Rue Maurice Ravel". The street trigram index goes: a misspelt street is compared with
  the streets of its commune only (b-tree on the commune), never searched nationally.

Both tables stay small next to ``address`` (docs/privacy.md gives the figures) and are kept in
step by the same statement-level triggers as before (and by the address import's bulk path).
"""

from alembic import op

from app.migration_helpers import reference_table

revision = "0018_geocoder_france"
down_revision = "0016_member_invitations"
branch_labels = None
depends_on = None

# Street types that may be left out when typing ("12 Maurice Ravel"): the first word of the
# normalised name (porte_norm_name has expanded abbreviations already).
STREET_TYPES = (
    "rue", "avenue", "boulevard", "place", "chemin", "allee", "impasse", "route", "square",
    "cours", "quai", "faubourg", "residence", "lotissement", "hameau", "passage", "promenade",
    "sentier", "ruelle", "venelle", "voie", "villa", "cite", "clos", "domaine", "esplanade",
    "parvis", "mail", "traverse", "montee", "cour", "parc", "carrefour", "rampe", "levee",
    "digue", "sente", "dreve", "za", "zi", "zac",
)  # fmt: skip

FUNCTIONS = (
    r"""
-- "rue maurice ravel" -> "maurice ravel"; "rond point europe" -> "europe"; a name that is
-- only a type stays as it is.
CREATE FUNCTION porte_street_core(norm text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
SELECT CASE
  WHEN norm LIKE 'rond point %' THEN substr(norm, 12)
  WHEN position(' ' IN norm) > 0 AND split_part(norm, ' ', 1) = ANY (ARRAY[%TYPES%])
    THEN substr(norm, position(' ' IN norm) + 1)
  ELSE norm END
$$
""".replace("%TYPES%", ", ".join(f"'{t}'" for t in STREET_TYPES)),
    r"""
-- Commune names as a comparison key: porte_norm_name (accents, case, hyphens, Saint/St,
-- articles), then arrondissements and Cedex: "Paris 1er Arrondissement", "PARIS 01",
-- "paris 1e" -> "paris 1".
CREATE FUNCTION porte_norm_city(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
SELECT btrim(regexp_replace(regexp_replace(regexp_replace(
         porte_norm_name(t),
         '\m(arrondissements?|arrondt|arrdt|arrt|arr|cedex)\M', ' ', 'g'),
         '\m0*([0-9]+)(er|ere|eme|ieme|em|e|nd|nde)?\M', '\1', 'g'),
         ' +', ' ', 'g'))
$$
""",
    r"""
-- The city an arrondissement belongs to (official codes: Paris 75101-75120, Lyon 69381-69389,
-- Marseille 13201-13216); any other commune is its own city.
CREATE FUNCTION porte_city_code(code text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
SELECT CASE
  WHEN code BETWEEN '75101' AND '75120' THEN '75056'
  WHEN code BETWEEN '69381' AND '69389' THEN '69123'
  WHEN code BETWEEN '13201' AND '13216' THEN '13055'
  ELSE code END
$$
""",
    r"""
-- The letters of a name in order ("maizy" -> "aimyz"): two letters swapped keep it.
CREATE FUNCTION porte_letters(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT string_agg(x, '' ORDER BY x COLLATE "C") FROM regexp_split_to_table(t, '') AS x $$
""",
    r"""
CREATE FUNCTION porte_city_norm(code text, nom text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
SELECT CASE porte_city_code(code)
  WHEN '75056' THEN 'paris' WHEN '69123' THEN 'lyon' WHEN '13055' THEN 'marseille'
  ELSE porte_norm_city(nom) END
$$
""",
)

TABLES = """
ALTER TABLE address ADD COLUMN code_insee_ancienne_commune text,
                    ADD COLUMN nom_ancienne_commune text;

DROP INDEX IF EXISTS geocode_street_trgm;
ALTER TABLE geocode_street
  ADD COLUMN voie_core text GENERATED ALWAYS AS (porte_street_core(voie_norm)) STORED;
CREATE INDEX geocode_street_core ON geocode_street (code_insee, voie_core);

DROP TABLE geocode_commune;
CREATE TABLE geocode_commune (
    code_insee text NOT NULL,
    code_postal text NOT NULL,   -- '' when the doors carry no postcode (BAL)
    nom_commune text NOT NULL,
    nom_ancienne text NOT NULL,  -- former commune ('' for doors outside any)
    n integer NOT NULL,
    commune_norm text GENERATED ALWAYS AS (porte_norm_city(nom_commune)) STORED,
    ancienne_norm text GENERATED ALWAYS AS (porte_norm_city(nom_ancienne)) STORED,
    city_code text GENERATED ALWAYS AS (porte_city_code(code_insee)) STORED,
    city_norm text GENERATED ALWAYS AS (porte_city_norm(code_insee, nom_commune)) STORED,
    -- the postal département: first two digits of the postcode (of the INSEE code without one)
    dept text GENERATED ALWAYS AS (CASE WHEN code_postal <> '' THEN left(code_postal, 2)
        ELSE translate(left(code_insee, 2), 'AB', '00') END) STORED,
    PRIMARY KEY (code_insee, code_postal, nom_commune, nom_ancienne)
);
CREATE INDEX geocode_commune_norm ON geocode_commune (commune_norm);
CREATE INDEX geocode_commune_city ON geocode_commune (city_norm);
CREATE INDEX geocode_commune_ancienne ON geocode_commune (ancienne_norm)
    WHERE ancienne_norm <> '';
CREATE INDEX geocode_commune_postal ON geocode_commune (code_postal);
CREATE INDEX geocode_commune_dept ON geocode_commune (dept);
-- a misspelt name typed with no postcode: the names of about its length that start or end with
-- the same three letters (one slip cannot change both ends of a name of six letters or more);
-- shorter names by their first and last two letters; two letters swapped by the sorted letters
CREATE INDEX geocode_commune_city_head ON geocode_commune (left(city_norm, 3), length(city_norm));
CREATE INDEX geocode_commune_city_tail ON geocode_commune (right(city_norm, 3), length(city_norm));
CREATE INDEX geocode_commune_city_ends ON geocode_commune (left(city_norm, 2), right(city_norm, 2));
CREATE INDEX geocode_commune_city_letters ON geocode_commune (porte_letters(city_norm));
CREATE INDEX geocode_commune_ancienne_head ON geocode_commune
    (left(ancienne_norm, 3), length(ancienne_norm)) WHERE ancienne_norm <> '';
CREATE INDEX geocode_commune_ancienne_tail ON geocode_commune
    (right(ancienne_norm, 3), length(ancienne_norm)) WHERE ancienne_norm <> '';
"""

TRIGGER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION porte_geocode_index_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO geocode_street AS s (code_insee, nom_voie, voie_norm, n)
  SELECT code_insee, nom_voie, porte_norm_name(nom_voie), count(*)
  FROM new_rows WHERE code_insee IS NOT NULL AND nom_voie IS NOT NULL GROUP BY 1, 2
  ON CONFLICT (code_insee, nom_voie) DO UPDATE SET n = s.n + excluded.n;
  INSERT INTO geocode_commune AS c (code_insee, code_postal, nom_commune, nom_ancienne, n)
  SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
         coalesce(nom_ancienne_commune, ''), count(*)
  FROM new_rows WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3, 4
  ON CONFLICT (code_insee, code_postal, nom_commune, nom_ancienne)
  DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION porte_geocode_index_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE geocode_street s SET n = s.n - o.n
  FROM (SELECT code_insee, nom_voie, count(*) AS n FROM old_rows GROUP BY 1, 2) o
  WHERE s.code_insee = o.code_insee AND s.nom_voie = o.nom_voie;
  DELETE FROM geocode_street WHERE n <= 0;
  UPDATE geocode_commune c SET n = c.n - o.n
  FROM (SELECT code_insee, coalesce(code_postal, '') AS code_postal,
               coalesce(nom_commune, '') AS nom_commune,
               coalesce(nom_ancienne_commune, '') AS nom_ancienne, count(*) AS n
        FROM old_rows GROUP BY 1, 2, 3, 4) o
  WHERE c.code_insee = o.code_insee AND c.code_postal = o.code_postal
    AND c.nom_commune = o.nom_commune AND c.nom_ancienne = o.nom_ancienne;
  DELETE FROM geocode_commune WHERE n <= 0;
  RETURN NULL;
END $$;
"""

BACKFILL = """
INSERT INTO geocode_commune (code_insee, code_postal, nom_commune, nom_ancienne, n)
SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
       coalesce(nom_ancienne_commune, ''), count(*)
FROM address WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3, 4;
"""

# ------------------------------------------------------------------ back to 0005's shape
OLD_TABLE = """
DROP TABLE geocode_commune;
CREATE TABLE geocode_commune (
    code_insee text NOT NULL,
    code_postal text NOT NULL,
    nom_commune text NOT NULL,
    commune_norm text NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (code_insee, code_postal, nom_commune)
);
CREATE INDEX geocode_commune_norm ON geocode_commune (commune_norm);
CREATE INDEX geocode_commune_postal ON geocode_commune (code_postal);
CREATE INDEX geocode_commune_dept ON geocode_commune (left(code_insee, 2));
DROP INDEX geocode_street_core;
ALTER TABLE geocode_street DROP COLUMN voie_core;
CREATE INDEX geocode_street_trgm ON geocode_street USING gin (voie_norm gin_trgm_ops);
"""

OLD_TRIGGER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION porte_geocode_index_add() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION porte_geocode_index_remove() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""

OLD_BACKFILL = """
INSERT INTO geocode_commune (code_insee, code_postal, nom_commune, commune_norm, n)
SELECT code_insee, coalesce(code_postal, ''), coalesce(nom_commune, ''),
       porte_norm_name(coalesce(nom_commune, '')), count(*)
FROM address WHERE code_insee IS NOT NULL GROUP BY 1, 2, 3;
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
    # levenshtein(): a misspelt commune name is judged by its edit distance (trusted extension)
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    for fn in FUNCTIONS:
        op.execute(fn)
    _run(TABLES)
    _run(TRIGGER_FUNCTIONS)
    _run(BACKFILL)
    reference_table("geocode_commune")


def downgrade() -> None:
    _run(OLD_TABLE)
    _run(OLD_TRIGGER_FUNCTIONS)
    op.execute(
        "ALTER TABLE address DROP COLUMN code_insee_ancienne_commune,"
        " DROP COLUMN nom_ancienne_commune"
    )
    _run(OLD_BACKFILL)
    reference_table("geocode_commune")
    for fn in ("porte_city_norm(text, text)", "porte_city_code(text)", "porte_norm_city(text)",
               "porte_street_core(text)", "porte_letters(text)"):  # fmt: skip
        op.execute(f"DROP FUNCTION {fn}")
