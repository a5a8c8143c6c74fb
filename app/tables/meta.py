"""The one ``MetaData`` every table is declared in, and how Alembic compares it with a database.

``COMPARE_OPTIONS`` are given to Alembic's autogenerate (``compare_metadata`` in
tests/test_schema.py, ``alembic revision --autogenerate`` through alembic/env.py): types and
server defaults are compared; PostGIS's own tables and the schemas of its extensions (topology,
tiger) are not ours and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

metadata = MetaData()

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
