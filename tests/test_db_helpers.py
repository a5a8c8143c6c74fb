"""Small database helpers of app/db.py that the hot paths and imports rely on."""

from __future__ import annotations

from sqlalchemy import text

from app.db import custom_plans


async def test_custom_plans_covers_only_the_statements_inside(owner_engine):
    """Inside: custom plans for every run (no switch to a generic plan after five); after: the
    transaction's previous setting, whatever it was."""
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        async with custom_plans(conn):
            inside = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
        after = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
        async with custom_plans(conn, when=False):
            skipped = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
    assert (inside, after, skipped) == ("force_custom_plan", "force_generic_plan", after)
    async with owner_engine.connect() as conn:  # and nothing leaks out of the transaction
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one() == "auto"
