"""The one ``MetaData`` every table is declared in, and how Alembic compares it with a database.

``COMPARE_OPTIONS`` are given to Alembic's autogenerate (``compare_metadata`` in
tests/test_schema.py, ``alembic revision --autogenerate`` through alembic/env.py): types and
server defaults are compared; PostGIS's own tables and the schemas of its extensions (topology,
tiger) are not ours and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Identity,
    MetaData,
    Uuid,
    text,
)

# Constraint names as PostgreSQL gives them when a migration does not name them; a table names
# its own only where a migration chose another name. A check constraint is named after its table:
# ``name="status_check"`` in table ``turf`` is ``turf_status_check``.
metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s",
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


def serial_id() -> Column:
    """A ``bigint`` ``id`` the database numbers (``GENERATED ALWAYS AS IDENTITY``)."""
    return Column("id", BigInteger, Identity(always=True), primary_key=True, autoincrement=True)


def child_key(
    parent: str, column: str, type_: Any = Uuid
) -> tuple[Column, Column, ForeignKeyConstraint]:
    """The key of a table of rows that belong to one row of ``parent`` (a table keyed by
    ``campaign_id, id``; ``type_``: the type of that ``id``): ``campaign_id`` and ``column`` lead
    the key, and the rows go with their parent."""
    return (
        Column("campaign_id", Uuid, primary_key=True),
        Column(column, type_, primary_key=True),
        tenant_ref(column, parent, ondelete="CASCADE"),
    )


def tenant_ref(column: str, parent: str, ondelete: str, **kw: Any) -> ForeignKeyConstraint:
    """``(campaign_id, column)`` refers to a row of ``parent`` in the same campaign. ``ondelete``
    ``"SET NULL"`` clears only ``column`` (not the campaign: PostgreSQL 15's column list)."""
    if ondelete == "SET NULL":
        ondelete = f"SET NULL ({column})"
    return ForeignKeyConstraint(
        ["campaign_id", column], [f"{parent}.campaign_id", f"{parent}.id"], ondelete=ondelete, **kw
    )


def user_ref(
    name: str, ondelete: str | None = "SET NULL", **kw: Any
) -> tuple[Column, ForeignKeyConstraint]:
    """A column naming an account (``app_user.id``); by default the account's deletion leaves the
    row, with the column cleared."""
    return Column(name, Uuid, **kw), ForeignKeyConstraint(
        [name], ["app_user.id"], ondelete=ondelete
    )


def doubles(*names: str) -> list[Column]:
    """Optional ``double precision`` columns: the statistics of a tile or a district."""
    return [Column(name, Double) for name in names]


def one_of(column: str, *values: str) -> CheckConstraint:
    """``column`` takes one of ``values`` (named ``<table>_<column>_check``)."""
    listed = ", ".join(f"'{value}'::text" for value in values)
    return CheckConstraint(f"{column} = ANY (ARRAY[{listed}])", name=f"{column}_check")


def length_between(column: str, low: int, high: int) -> CheckConstraint:
    """A text ``column`` holds from ``low`` to ``high`` characters."""
    return CheckConstraint(
        f"length({column}) >= {low} AND length({column}) <= {high}", name=f"{column}_check"
    )


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
