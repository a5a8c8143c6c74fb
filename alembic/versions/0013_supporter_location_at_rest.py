"""A supporter's exact door is encrypted at rest; only the coarse cells aggregates read stay clear.

Before: ``supporter.address_id`` (the door) and ``supporter.geom`` (the point) were stored in
clear, so a dump or a backup listed every supporter's home without the data keys. Now:

- ``address_id_enc`` and ``point_enc`` hold the door id and the point (``"lon lat"``), encrypted
  with the row's other personal columns (same key id, associated data ``campaign|row|column``,
  see ``app.services.access.crypto``), re-encrypted by ``porte keys rotate``;
- ``tile_id`` (INSEE 200 m square), ``bv_code`` (polling station) and ``iris_code`` (IRIS) stay
  in clear: they are all the aggregates and the ranking read. ``porte_point_cells(lon, lat)``
  computes them (the service passes the point it has just decrypted or geocoded; nothing keeps it);
- ``cells_version`` is ``district_version.version`` when the codes were computed: a statement
  trigger on ``district`` bumps that version whenever contours are imported, and the service
  recomputes the codes of a campaign's supporters (decrypting their points) before it next counts
  them (``app.services.people.supporters.cells``).

Existing placed supporters are converted here with the keys of the environment the service reads
(``PORTE_DATA_KEYS`` / ``PORTE_DATA_KEY_ID``, or ``.env``): when some exist and the keys are not
set, the upgrade refuses and changes nothing. A row under an older key is re-encrypted whole under
the current key (one key id per row). ``downgrade()`` decrypts the doors back (needs the keys when
there are some).

Revision ID: 0013_supporter_location_at_rest
Revises: 0029_legal_basis
"""

from alembic import op
from sqlalchemy import text

from app.migration_helpers import reference_table

revision = "0013_supporter_location_at_rest"
down_revision = "0029_legal_basis"
branch_labels = None
depends_on = None

BATCH = 2000
PERSONAL = ("name", "email", "phone", "address", "notes")  # the columns 0005 encrypted


class MigrationRefused(RuntimeError):
    """The migration cannot run in this environment; nothing was changed."""


def _cipher(count: int, verb: str):
    """The data keys of the environment, or a clear refusal naming what to do."""
    from app.config import get_settings
    from app.services.access.crypto import Cipher, KeyError_

    try:
        return Cipher.from_settings(get_settings())
    except KeyError_ as exc:
        raise MigrationRefused(
            f"{count} supporter(s) are placed on a door that this migration must {verb}, which "
            f"needs the data keys: {exc.detail} Set PORTE_DATA_KEYS and PORTE_DATA_KEY_ID in this "
            "environment exactly as for the service (or in .env), then run `porte db migrate` "
            "again. Nothing was changed."
        ) from None


CELLS = """
CREATE FUNCTION porte_point_cells(lon double precision, lat double precision,
    OUT tile_id text, OUT bv_code text, OUT iris_code text)
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
SELECT 'CRS3035RES200mN' || (floor(ST_Y(q.p) / 200) * 200)::bigint
           || 'E' || (floor(ST_X(q.p) / 200) * 200)::bigint,
       (SELECT d.code FROM district d WHERE d.kind = 'bureau_de_vote' AND ST_Covers(d.geom, pt.g)
        ORDER BY d.code LIMIT 1),
       (SELECT d.code FROM district d WHERE d.kind = 'iris' AND ST_Covers(d.geom, pt.g)
        ORDER BY d.code LIMIT 1)
FROM (SELECT ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS g) pt
CROSS JOIN LATERAL (SELECT ST_Transform(pt.g, 3035) AS p) q
$$
"""

DISTRICT_VERSION = [
    "CREATE TABLE district_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), "
    "version bigint NOT NULL)",
    "INSERT INTO district_version (version) VALUES (1)",
    "CREATE FUNCTION porte_district_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE district_version SET version = version + 1; RETURN NULL; END $$",
    "CREATE TRIGGER district_version_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
    "ON district FOR EACH STATEMENT EXECUTE FUNCTION porte_district_changed()",
]

ENC_ALL = (*PERSONAL, "address_id", "point")


def _constraints(enc: tuple[str, ...], clear_location: str) -> list[str]:
    nulls = " AND ".join(f"{c}_enc IS NULL" for c in enc)
    return [
        "ALTER TABLE supporter ADD CONSTRAINT supporter_withdrawn_has_no_identity CHECK "
        f"(status = 'active' OR ({nulls} AND {clear_location} AND withdrawn_at IS NOT NULL))",
        "ALTER TABLE supporter ADD CONSTRAINT supporter_ciphertext_has_key CHECK "
        f"(key_id IS NOT NULL OR ({nulls}))",
    ]


def _drop_constraints() -> None:
    op.execute("ALTER TABLE supporter DROP CONSTRAINT supporter_withdrawn_has_no_identity")
    op.execute("ALTER TABLE supporter DROP CONSTRAINT supporter_ciphertext_has_key")


_CONVERT = text(
    """
    UPDATE supporter s SET key_id = t.k, name_enc = t.n, email_enc = t.e, phone_enc = t.p,
        address_enc = t.a, notes_enc = t.o, address_id_enc = t.aid, point_enc = t.pt
    FROM unnest(CAST(:c AS uuid[]), CAST(:i AS uuid[]), CAST(:k AS text[]), CAST(:n AS bytea[]),
                CAST(:e AS bytea[]), CAST(:p AS bytea[]), CAST(:a AS bytea[]),
                CAST(:o AS bytea[]), CAST(:aid AS bytea[]), CAST(:pt AS bytea[]))
         AS t(c, i, k, n, e, p, a, o, aid, pt)
    WHERE s.campaign_id = t.c AND s.id = t.i
    """
)


def upgrade() -> None:
    from app.services.access.crypto import aad

    bind = op.get_bind()
    rows = bind.execute(
        text(
            "SELECT campaign_id, id, key_id, name_enc, email_enc, phone_enc, address_enc, "
            "notes_enc, address_id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM supporter "
            "WHERE address_id IS NOT NULL OR geom IS NOT NULL FOR UPDATE"
        )
    ).all()
    cipher = _cipher(len(rows), "encrypt") if rows else None

    for statement in DISTRICT_VERSION:
        op.execute(statement)
    reference_table("district_version")
    op.execute(CELLS)
    op.execute(
        "ALTER TABLE supporter ADD COLUMN address_id_enc bytea, ADD COLUMN point_enc bytea, "
        "ADD COLUMN tile_id text, ADD COLUMN bv_code text, ADD COLUMN iris_code text, "
        "ADD COLUMN cells_version bigint"
    )

    for start in range(0, len(rows), BATCH):
        cols: dict[str, list] = {
            k: [] for k in ("c", "i", "k", "n", "e", "p", "a", "o", "aid", "pt")
        }
        for r in rows[start : start + BATCH]:
            assert cipher is not None
            old = r.key_id
            plain = {}
            for f in PERSONAL:
                blob = getattr(r, f"{f}_enc")
                plain[f] = (
                    None
                    if blob is None
                    else cipher.decrypt(blob, key_id=old, ad=aad(r.campaign_id, r.id, f))
                )
            plain["address_id"] = None if r.address_id is None else str(r.address_id)
            plain["point"] = None if r.lon is None else f"{r.lon!r} {r.lat!r}"
            enc = {f: cipher.encrypt(v, ad=aad(r.campaign_id, r.id, f)) for f, v in plain.items()}
            for k, v in (
                ("c", r.campaign_id),
                ("i", r.id),
                ("k", cipher.current),
                ("n", enc["name"]),
                ("e", enc["email"]),
                ("p", enc["phone"]),
                ("a", enc["address"]),
                ("o", enc["notes"]),
                ("aid", enc["address_id"]),
                ("pt", enc["point"]),
            ):
                cols[k].append(v)
        bind.execute(_CONVERT, cols)
    # the coarse cells, from the clear point while it still exists
    op.execute(
        "UPDATE supporter s SET tile_id = c.tile_id, bv_code = c.bv_code, "
        "iris_code = c.iris_code, cells_version = (SELECT version FROM district_version) "
        "FROM supporter x CROSS JOIN LATERAL porte_point_cells(ST_X(x.geom), ST_Y(x.geom)) c "
        "WHERE x.geom IS NOT NULL AND s.campaign_id = x.campaign_id AND s.id = x.id"
    )

    _drop_constraints()
    op.execute("DROP INDEX IF EXISTS supporter_geom")
    op.execute("ALTER TABLE supporter DROP COLUMN geom, DROP COLUMN address_id")
    for statement in _constraints(
        ENC_ALL, "tile_id IS NULL AND bv_code IS NULL AND iris_code IS NULL"
    ):
        op.execute(statement)
    # which placed supporters' codes predate the last contour import (cells.py)
    op.execute(
        "CREATE INDEX supporter_cells ON supporter (campaign_id, cells_version) "
        "WHERE point_enc IS NOT NULL"
    )


def downgrade() -> None:
    from app.services.access.crypto import DecryptionFailed, aad

    bind = op.get_bind()
    rows = bind.execute(
        text(
            "SELECT campaign_id, id, key_id, address_id_enc, point_enc FROM supporter "
            "WHERE address_id_enc IS NOT NULL OR point_enc IS NOT NULL FOR UPDATE"
        )
    ).all()
    op.execute(
        "ALTER TABLE supporter ADD COLUMN address_id bigint, ADD COLUMN geom geometry(Point, 4326)"
    )
    if rows:
        cipher = _cipher(len(rows), "decrypt back into plain columns")
        ids, aids, lons, lats, cids = [], [], [], [], []
        for r in rows:
            try:
                aid = cipher.decrypt(
                    r.address_id_enc, key_id=r.key_id, ad=aad(r.campaign_id, r.id, "address_id")
                )
                point = cipher.decrypt(
                    r.point_enc, key_id=r.key_id, ad=aad(r.campaign_id, r.id, "point")
                )
            except DecryptionFailed as exc:
                raise MigrationRefused(
                    f"The door of supporter {r.id} cannot be decrypted ({exc}). Add the missing "
                    "key to PORTE_DATA_KEYS, then downgrade again. Nothing was changed."
                ) from None
            lon, lat = (float(x) for x in point.split()) if point else (None, None)
            cids.append(r.campaign_id)
            ids.append(r.id)
            aids.append(int(aid) if aid else None)
            lons.append(lon)
            lats.append(lat)
        bind.execute(
            text(
                "UPDATE supporter s SET address_id = t.aid, geom = CASE WHEN t.lon IS NULL "
                "THEN NULL ELSE ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326) END "
                "FROM unnest(CAST(:c AS uuid[]), CAST(:i AS uuid[]), CAST(:aid AS bigint[]), "
                "CAST(:lon AS float8[]), CAST(:lat AS float8[])) AS t(c, i, aid, lon, lat) "
                "WHERE s.campaign_id = t.c AND s.id = t.i"
            ),
            {"c": cids, "i": ids, "aid": aids, "lon": lons, "lat": lats},
        )
    _drop_constraints()
    op.execute("DROP INDEX IF EXISTS supporter_cells")
    op.execute(
        "ALTER TABLE supporter DROP COLUMN address_id_enc, DROP COLUMN point_enc, "
        "DROP COLUMN tile_id, DROP COLUMN bv_code, DROP COLUMN iris_code, "
        "DROP COLUMN cells_version"
    )
    for statement in _constraints(PERSONAL, "geom IS NULL AND address_id IS NULL"):
        op.execute(statement)
    op.execute("CREATE INDEX supporter_geom ON supporter USING gist (geom) WHERE status = 'active'")
    op.execute("DROP FUNCTION IF EXISTS porte_point_cells(double precision, double precision)")
    op.execute("DROP TRIGGER IF EXISTS district_version_bump ON district")
    op.execute("DROP FUNCTION IF EXISTS porte_district_changed()")
    op.execute("DROP TABLE IF EXISTS district_version")
