"""Isolation in PostgreSQL: a query that forgets its filter still sees only the current campaign.

Runs raw SQL through the service's own database session (the ``porte_app`` role the app connects
with). Campaign tables are discovered from information_schema, so tables added by later
migrations are covered without touching this file.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import set_tenant
from tests.factories import make_invite, make_world
from tests.fixtures_access import *  # noqa: F403

CAMPAIGN_TABLES = text(
    """
    SELECT c.table_name FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND c.column_name = 'campaign_id'
      AND t.table_type = 'BASE TABLE'
    ORDER BY 1
    """
)


@pytest.fixture(scope="module")
async def two_campaigns(access_owner, access_settings):
    """Campaigns A and B, each with members, invites and audit events."""
    a = await make_world(access_owner, access_settings)
    b = await make_world(access_owner, access_settings)
    for w in (a, b):
        await make_invite(access_owner, access_settings, w.campaign_id)
        async with access_owner.begin() as conn:
            await conn.execute(
                text("INSERT INTO audit_event (campaign_id, action) VALUES (:c, 'test.view')"),
                {"c": w.campaign_id},
            )
    return a, b


async def _tables(access_owner) -> list[str]:
    async with access_owner.connect() as conn:
        return list((await conn.execute(CAMPAIGN_TABLES)).scalars())


async def test_every_campaign_table_has_forced_rls(access_owner):
    tables = await _tables(access_owner)
    assert {"membership", "audit_event", "invite"} <= set(tables)
    async with access_owner.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                    "  (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid "
                    "   AND pg_get_expr(p.polqual, p.polrelid) LIKE '%porte_current_campaign()%')"
                    "  AS policies "
                    "FROM pg_class c WHERE c.relname = ANY(:t) AND c.relnamespace = "
                    "'public'::regnamespace"
                ),
                {"t": tables},
            )
        ).all()
    bad = [r.relname for r in rows if not (r.relrowsecurity and r.relforcerowsecurity)]
    assert not bad, f"RLS not enabled and forced on: {bad}"
    unpoliced = [r.relname for r in rows if r.policies == 0]
    assert not unpoliced, f"no policy on porte_current_campaign() for: {unpoliced}"
    # campaign_id leads the primary key (Citus-ready distribution key)
    async with access_owner.connect() as conn:
        pks = (
            await conn.execute(
                text(
                    "SELECT tc.table_name, kcu.column_name FROM information_schema."
                    "table_constraints tc JOIN information_schema.key_column_usage kcu "
                    "ON kcu.constraint_name = tc.constraint_name "
                    "AND kcu.table_name = tc.table_name "
                    "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' "
                    "AND kcu.ordinal_position = 1 AND tc.table_name = ANY(:t)"
                ),
                {"t": tables},
            )
        ).all()
    not_first = [t for t, col in pks if col != "campaign_id"]
    assert not not_first, f"campaign_id is not first in the primary key of {not_first}"


async def test_select_without_where_sees_only_the_current_campaign(
    two_campaigns, access_app, access_owner
):
    a, b = two_campaigns
    tables = await _tables(access_owner)
    # Ground truth as the owner: B has rows in (at least) these tables.
    async with access_owner.connect() as conn:
        b_rows = {
            t: (
                await conn.execute(
                    text(f'SELECT count(*) FROM "{t}" WHERE campaign_id = :c'), {"c": b.campaign_id}
                )
            ).scalar_one()
            for t in tables
        }
    assert b_rows["membership"] == 4 and b_rows["invite"] == 1 and b_rows["audit_event"] >= 1

    db = access_app.state.db  # the service's own engine: the porte_app role
    checked = 0
    async with db.transaction() as session:
        assert (await session.execute(text("SELECT current_user"))).scalar() == "porte_app"
        await set_tenant(session, a.campaign_id)
        for t in tables:
            ids = (await session.execute(text(f'SELECT campaign_id FROM "{t}"'))).scalars().all()
            assert set(ids) <= {a.campaign_id}, f"{t} leaks rows of another campaign"
            if b_rows[t]:
                checked += 1
            if t in ("membership", "invite", "audit_event"):
                assert ids, f"{t}: campaign A's own rows should be visible"
    assert checked >= 3
    async with db.transaction() as session:
        await set_tenant(session, None)
        for t in tables:
            n = (await session.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one()
            assert n == 0, f"{t}: {n} rows visible with no campaign set"
    async with db.transaction() as session:  # no set_tenant at all
        for t in tables:
            n = (await session.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one()
            assert n == 0, f"{t}: {n} rows visible in a fresh transaction"
        # and the campaigns themselves
        assert (await session.execute(text("SELECT count(*) FROM campaign"))).scalar_one() == 0


async def test_tenant_setting_does_not_outlive_its_transaction(two_campaigns, access_app):
    a, _ = two_campaigns
    db = access_app.state.db
    async with db.transaction() as session:
        await set_tenant(session, a.campaign_id)
    async with db.transaction() as session:
        left = (
            await session.execute(text("SELECT current_setting('porte.campaign_id', true)"))
        ).scalar()
        assert not left


async def test_writes_into_another_campaign_are_refused(two_campaigns, access_app):
    a, b = two_campaigns
    db = access_app.state.db
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.transaction() as session:
            await set_tenant(session, a.campaign_id)
            await session.execute(
                text(
                    "INSERT INTO invite (campaign_id, token_hash, expires_at) "
                    "VALUES (:c, :h, now() + interval '1 day')"
                ),
                {"c": b.campaign_id, "h": uuid.uuid4().hex},
            )
    async with db.transaction() as session:
        await set_tenant(session, a.campaign_id)
        res = await session.execute(
            text("UPDATE invite SET revoked_at = now() WHERE campaign_id = :c"),
            {"c": b.campaign_id},
        )
        assert res.rowcount == 0  # B's invites are invisible, so untouched
        await session.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET action = 'forged'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ],
)
async def test_audit_log_is_append_only_for_the_service(statement, two_campaigns, access_app):
    a, _ = two_campaigns
    with pytest.raises(DBAPIError, match="permission denied"):
        async with access_app.state.db.transaction() as session:
            await set_tenant(session, a.campaign_id)
            await session.execute(text(statement))


async def test_service_role_has_no_bypass_and_owns_nothing(access_app):
    async with access_app.state.db.transaction() as session:
        role = (
            await session.execute(
                text(
                    "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
        assert role.rolname == "porte_app"
        assert not (role.rolsuper or role.rolbypassrls or role.rolcreaterole or role.rolcreatedb)
        owned = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) "
                    "+ (SELECT count(*) FROM pg_proc WHERE proowner = r.oid) "
                    "+ (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) "
                    "+ (SELECT count(*) FROM pg_type WHERE typowner = r.oid) "
                    "FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).scalar_one()
        assert owned == 0
        inherited_bypass = (
            await session.execute(
                text(
                    "SELECT count(*) FROM pg_roles r WHERE (r.rolbypassrls OR r.rolsuper) "
                    "AND pg_has_role(current_user, r.oid, 'MEMBER')"
                )
            )
        ).scalar_one()
        assert inherited_bypass == 0
        with pytest.raises(DBAPIError):
            async with session.begin_nested():
                await session.execute(text("ALTER TABLE audit_event DISABLE ROW LEVEL SECURITY"))
