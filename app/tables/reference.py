"""Public reference data, written by the schema owner (importers, allocation) and read by the
service: INSEE tiles, doors, districts, elections, the geocoder's counts, the tile-to-district
allocation and its state, the import log.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.geo.insee import FILOSOFI_COUNTS
from app.tables.meta import TZ, at, doubles, metadata, one_of, serial_id

insee_tile = Table(
    "insee_tile",
    metadata,
    Column("id", Text, primary_key=True),
    Column("geom", Geometry("POLYGON", 3035, spatial_index=False), nullable=False),
    *doubles(*FILOSOFI_COUNTS),
    Column("i_est_200", SmallInteger),
    Column("lcog_geo", Text),
    Column("source_file", Text, nullable=False),
    Index("insee_tile_geom", "geom", postgresql_using="gist"),
    Index("insee_tile_source", "source_file"),
)


address = Table(
    "address",
    metadata,
    serial_id(),
    Column("ban_id", Text(collation="C")),
    Column("numero", Integer),
    Column("suffixe", Text),
    Column("nom_voie", Text),
    Column("code_postal", Text),
    Column("code_insee", Text(collation="C")),
    Column("nom_commune", Text),
    Column("lon", Double, nullable=False),
    Column("lat", Double, nullable=False),
    Column(
        "geom",
        Geometry("POINT", 4326, spatial_index=False),
        Computed("st_setsrid(st_makepoint(lon, lat), 4326)", persisted=True),
    ),
    Column("households", REAL, nullable=False, server_default=text("1")),
    Column("source", Text(collation="C"), nullable=False),
    Column("source_file", Text(collation="C"), nullable=False),
    Column("code_insee_ancienne_commune", Text),
    Column("nom_ancienne_commune", Text),
    CheckConstraint("households > 0::double precision", name="households_check"),
    CheckConstraint(
        "lat >= '-90'::integer::double precision AND lat <= 90::double precision",
        name="lat_check",
    ),
    CheckConstraint(
        "lon >= '-180'::integer::double precision AND lon <= 180::double precision",
        name="lon_check",
    ),
    one_of("source", "ban", "bal", "synthetic"),
    UniqueConstraint("ban_id"),
    Index("address_geocode_number", "code_insee", "nom_voie", "numero"),
    Index("address_geom", "geom", postgresql_using="gist"),
    Index("address_source", "source_file"),
    Index("address_synthetic", "code_insee", postgresql_where="(source = 'synthetic'::text)"),
)


district = Table(
    "district",
    metadata,
    Column("code", Text, primary_key=True),
    Column("kind", Text, nullable=False, server_default=text("'bureau_de_vote'::text")),
    Column("name", Text),
    Column("commune_code", Text),
    Column("commune_name", Text),
    Column("geom", Geometry("MULTIPOLYGON", 4326, spatial_index=False), nullable=False),
    Column("geom_3035", Geometry("MULTIPOLYGON", 3035, spatial_index=False), nullable=False),
    Column("source_file", Text, nullable=False),
    one_of("kind", "bureau_de_vote", "iris"),
    Index("district_commune", "commune_code"),
    Index("district_departement", text("porte_departement(commune_code)")),
    Index("district_geom", "geom", postgresql_using="gist"),
    Index("district_geom_3035", "geom_3035", postgresql_using="gist"),
)


district_version = Table(
    "district_version",
    metadata,
    Column("one", Boolean, primary_key=True, server_default=text("true")),
    Column("version", BigInteger, nullable=False),
    CheckConstraint("one", name="one_check"),
)


election = Table(
    "election",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("source_file", Text, nullable=False),
    at("loaded_at", "clock_timestamp()"),
    UniqueConstraint("name"),
)


election_result = Table(
    "election_result",
    metadata,
    Column("election_id", Integer, primary_key=True),
    Column("district_code", Text, primary_key=True),
    Column("commune_code", Text),
    Column("inscrits", Integer),
    Column("votants", Integer),
    Column("abstentions", Integer),
    Column("exprimes", Integer),
    Column("blancs", Integer),
    Column("nuls", Integer),
    ForeignKeyConstraint(["election_id"], ["election.id"], ondelete="CASCADE"),
    Index("election_result_district", "district_code"),
)


election_candidate_result = Table(
    "election_candidate_result",
    metadata,
    Column("election_id", Integer, primary_key=True),
    Column("district_code", Text, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("nuance", Text),
    Column("label", Text),
    Column("voix", Integer),
    ForeignKeyConstraint(["election_id"], ["election.id"], ondelete="CASCADE"),
)


import_run = Table(
    "import_run",
    metadata,
    serial_id(),
    Column("kind", Text, nullable=False),
    Column("source_file", Text, nullable=False),
    Column("source", Text),
    Column("started_at", TZ, nullable=False),
    at("finished_at", "clock_timestamp()"),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_loaded", BigInteger, nullable=False),
    Column("rows_skipped", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_rejected", BigInteger, nullable=False, server_default=text("0")),
    Column("details", JSONB),
)


geocode_street = Table(
    "geocode_street",
    metadata,
    Column("code_insee", Text, primary_key=True),
    Column("nom_voie", Text, primary_key=True),
    Column("voie_norm", Text, nullable=False),
    Column("n", Integer, nullable=False),
    Column("voie_core", Text, Computed("porte_street_core(voie_norm)", persisted=True)),
    Index("geocode_street_core", "code_insee", "voie_core"),
    Index("geocode_street_norm", "code_insee", "voie_norm"),
)


geocode_commune = Table(
    "geocode_commune",
    metadata,
    Column("code_insee", Text, primary_key=True),
    Column("code_postal", Text, primary_key=True),
    Column("nom_commune", Text, primary_key=True),
    Column("nom_ancienne", Text, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("commune_norm", Text, Computed("porte_norm_city(nom_commune)", persisted=True)),
    Column("ancienne_norm", Text, Computed("porte_norm_city(nom_ancienne)", persisted=True)),
    Column("city_code", Text, Computed("porte_city_code(code_insee)", persisted=True)),
    Column("city_norm", Text, Computed("porte_city_norm(code_insee, nom_commune)", persisted=True)),
    Column(
        "dept",
        Text,
        Computed(
            "CASE WHEN code_postal <> '' THEN left(code_postal, 2)"
            " ELSE translate(left(code_insee, 2), 'AB', '00') END",
            persisted=True,
        ),
    ),
    Index(
        "geocode_commune_ancienne", "ancienne_norm", postgresql_where="(ancienne_norm <> ''::text)"
    ),
    Index(
        "geocode_commune_ancienne_head",
        text("left(ancienne_norm, 3)"),
        text("length(ancienne_norm)"),
        postgresql_where="(ancienne_norm <> ''::text)",
    ),
    Index(
        "geocode_commune_ancienne_tail",
        text("right(ancienne_norm, 3)"),
        text("length(ancienne_norm)"),
        postgresql_where="(ancienne_norm <> ''::text)",
    ),
    Index("geocode_commune_city", "city_norm"),
    Index("geocode_commune_city_ends", text("left(city_norm, 2)"), text("right(city_norm, 2)")),
    Index("geocode_commune_city_head", text("left(city_norm, 3)"), text("length(city_norm)")),
    Index("geocode_commune_city_letters", text("porte_letters(city_norm)")),
    Index("geocode_commune_city_tail", text("right(city_norm, 3)"), text("length(city_norm)")),
    Index("geocode_commune_dept", "dept"),
    Index("geocode_commune_norm", "commune_norm"),
    Index("geocode_commune_postal", "code_postal"),
)


door_district = Table(
    "door_district",
    metadata,
    Column("address_id", BigInteger, primary_key=True),
    Column("district_code", Text, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("households", REAL, nullable=False),
    Index("door_district_block", "block"),
    Index("door_district_code", "district_code"),
)


district_alloc = Table(
    "district_alloc",
    metadata,
    Column("district_code", Text, primary_key=True),
    Column("tile_id", Text, primary_key=True),
    Column("weight", Double, nullable=False),
    Column("method", Text, nullable=False),
    Column("tile_doors", Integer, nullable=False),
    Column("doors", Integer, nullable=False),
    Column("area_share", Double, nullable=False),
    Column("block", BigInteger, nullable=False),
    one_of("method", "doors", "area"),
    CheckConstraint(
        "weight >= 0::double precision AND weight <= 1.000001::double precision",
        name="weight_check",
    ),
    Index("district_alloc_block", "block"),
    Index("district_alloc_tile", "tile_id"),
)


district_profile = Table(
    "district_profile",
    metadata,
    Column("district_code", Text, primary_key=True),
    *doubles(
        "ind",
        "men",
        "men_pauv",
        "men_1ind",
        "men_5ind",
        "men_prop",
        "men_fmp",
        "ind_snv",
        "log_soc",
        "log_total",
        "ind_18_24",
        "ind_25_39",
        "ind_40_54",
        "ind_55_64",
        "ind_65_79",
        "ind_80p",
    ),
    Column("men_imputed", Double, nullable=False, server_default=text("0")),
    Column("tiles", Integer, nullable=False, server_default=text("0")),
    Column("doors", Integer, nullable=False, server_default=text("0")),
    Column("door_households", Double, nullable=False, server_default=text("0")),
    Column("alloc_version", BigInteger, nullable=False, server_default=text("0")),
    Index("district_profile_version", "alloc_version"),
)


allocation_state = Table(
    "allocation_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("stale", Boolean, nullable=False, server_default=text("true")),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    Column("refreshed_at", TZ),
    Column("tiles", Integer),
    Column("doors", Integer),
    Column("districts", Integer),
    Column("pairs", Integer),
    Column("full_pending", Boolean, nullable=False, server_default=text("true")),
    Column("run_started_at", TZ),
    Column("run_blocks_done", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("id = 1", name="id_check"),
)


allocation_dirty = Table(
    "allocation_dirty",
    metadata,
    Column("block", BigInteger, primary_key=True),
    at("marked_at", "clock_timestamp()"),
)


allocation_dirty_district = Table(
    "allocation_dirty_district",
    metadata,
    Column("district_code", Text, primary_key=True),
)


# ---------------------------------------------------------------- territories (migration 0019)
constituency = Table(
    "constituency",
    metadata,
    Column("code", Text, primary_key=True),
    Column("departement", Text, nullable=False),
    Column("number", SmallInteger, nullable=False),
    Column("name", Text),
    Column("geom", Geometry("MULTIPOLYGON", 4326, spatial_index=False)),
    Column("source_file", Text),
    at("loaded_at"),
    CheckConstraint("code ~ '^[0-9A-Z]{2,3}-[0-9]{2}$'::text", name="constituency_code_check"),
    CheckConstraint("number >= 1 AND number <= 99", name="constituency_number_check"),
    Index("constituency_geom", "geom", postgresql_using="gist"),
    Index("constituency_source", "source_file"),
)


constituency_part = Table(
    "constituency_part",
    metadata,
    Column("constituency_code", Text, primary_key=True),
    Column("level", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    CheckConstraint(
        "level = ANY (ARRAY['district'::text, 'commune'::text])",
        name="constituency_part_level_check",
    ),
    ForeignKeyConstraint(["constituency_code"], ["constituency.code"], ondelete="CASCADE"),
    Index("constituency_part_code", "level", "code"),
)


district_constituency = Table(
    "district_constituency",
    metadata,
    Column("district_code", Text, primary_key=True),
    Column("constituency_code", Text, nullable=False),
    Column("method", Text, nullable=False),
    CheckConstraint(
        "method = ANY (ARRAY['district'::text, 'contour'::text, 'commune'::text])",
        name="district_constituency_method_check",
    ),
    Index("district_constituency_code", "constituency_code"),
)


# Counters bumped by statement triggers when districts, constituencies or election results
# change; ``mapped``: the counters district_constituency was resolved for; ``shaped``: the
# district counter the map's shapes were built for (0020).
reference_state = Table(
    "reference_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("districts", BigInteger, nullable=False, server_default=text("0")),
    Column("constituencies", BigInteger, nullable=False, server_default=text("0")),
    Column("elections", BigInteger, nullable=False, server_default=text("0")),
    Column("mapped", Text, nullable=False, server_default=text("''::text")),
    Column("shaped", BigInteger, nullable=False, server_default=text("'-1'::integer")),
    CheckConstraint("id = 1", name="reference_state_id_check"),
)


# ---------------------------------------------------------------- map shapes (migration 0020)
district_shape_source = Table(
    "district_shape_source",
    metadata,
    Column("district_code", Text, primary_key=True),
    Column("commune_code", Text),
    Column("geom_hash", Text, nullable=False),
)


map_tile_feature = Table(
    "map_tile_feature",
    metadata,
    Column("z", SmallInteger, primary_key=True),
    Column("x", Integer, primary_key=True),
    Column("y", Integer, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text),
    Column("commune_name", Text),
    Column("geom", Geometry(spatial_index=False), nullable=False),
    Index("map_tile_feature_code", "code"),
)


district_shape = Table(
    "district_shape",
    metadata,
    Column("district_code", Text, primary_key=True),
    Column("level", SmallInteger, primary_key=True),
    Column("geom", Geometry("GEOMETRY", 3857, spatial_index=False), nullable=False),
)


commune_shape = Table(
    "commune_shape",
    metadata,
    Column("commune_code", Text, primary_key=True),
    Column("level", SmallInteger, primary_key=True),
    Column("commune_name", Text),
    Column("geom", Geometry("GEOMETRY", 3857, spatial_index=False), nullable=False),
    Index("commune_shape_geom", "geom", postgresql_using="gist"),
)
