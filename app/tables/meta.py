"""The one ``MetaData`` every table is declared in, and how Alembic compares it with a database.

``COMPARE_OPTIONS`` are given to Alembic's autogenerate (``compare_metadata`` in
tests/test_schema.py, ``alembic revision --autogenerate`` through alembic/env.py): types and
server defaults are compared; PostGIS's own tables and the schemas of its extensions (topology,
tiger) are not ours and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, ForeignKeyConstraint, MetaData, Uuid, text

# Constraint names as PostgreSQL gives them when a migration does not name them; a table names
# its own only where a migration chose another name.
metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
    }
)

TZ = DateTime(timezone=True)


def tenant_key() -> tuple[Column, ForeignKeyConstraint]:
    """``campaign_id``: the first part of the key of every table of campaign data, whose rows go
    with their campaign (row-level security is keyed on it too: see the migrations)."""
    return (
        Column("campaign_id", Uuid, primary_key=True),
        ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
    )


def uuid_id() -> Column:
    """A random UUID ``id``, made by the database."""
    return Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()"))


def at(name: str, default: str = "now()") -> Column:
    """A required time stamp set by the database (``now()``: the transaction's start;
    ``clock_timestamp()``: the moment of the statement)."""
    return Column(name, TZ, nullable=False, server_default=text(default))


POSTGIS_TABLES = frozenset(
    {"spatial_ref_sys", "geometry_columns", "geography_columns", "raster_columns",
     "raster_overviews", "layer", "topology"}
)  # fmt: skip
NOT_OUR_SCHEMAS = frozenset({"topology", "tiger", "tiger_data"})


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave PostGIS's tables (and anything in its extensions' schemas) out of the comparison."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is None:
        return True
    return table.name not in POSTGIS_TABLES and table.schema not in NOT_OUR_SCHEMAS


COMPARE_OPTIONS: dict[str, Any] = {
    "compare_type": True,
    "compare_server_default": True,
    "include_object": include_object,
}
