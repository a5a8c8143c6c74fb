"""The schema, declared once: every table of the database as SQLAlchemy Core metadata.

The migrations (alembic/versions) are the history; this package is what a reader opens to see
the tables as they are at the head revision: columns and their types (GeoAlchemy2 ``Geometry``
for PostGIS columns), keys, foreign keys, indexes and check constraints. Grouped like the
services: ``reference`` (public reference data), ``access`` (accounts, campaigns, audit),
``people`` (supporters, GDPR), ``field`` (turfs, assignments, visits), ``ranking``.

tests/test_schema.py migrates a fresh database to head and compares it with ``metadata`` through
Alembic's autogenerate (``compare_metadata``): any difference in tables, columns, types,
nullability, server defaults, primary/unique/foreign keys or indexes fails the suite, so a
migration and this file change together. What Alembic does not compare is not checked here: check
constraints (declared for the reader), the expressions of generated columns, and everything
outside tables: PL/pgSQL functions, triggers, views, row-level security policies, grants (see the
migrations and app/sql/). The tables of PostGIS (``spatial_ref_sys``) are not ours and are left
out. The service reaches the database through SQL (app/sql/, services); it does not need these
objects, and nothing calls ``metadata.create_all``: migrations create the schema.
"""

from app.tables import access, field, people, ranking, reference
from app.tables.meta import metadata

__all__ = ["access", "field", "metadata", "people", "ranking", "reference"]
