"""The campaign scope: members see their campaign, others get 404, anonymous 401."""

from __future__ import annotations

import httpx

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import make_world


async def test_member_sees_campaign_and_outsider_gets_404(make_db):
    from sqlalchemy.ext.asyncio import create_async_engine

    urls = make_db("scope")
    settings = make_settings(urls)
    engine = create_async_engine(urls.owner)
    a = await make_world(engine, settings)
    b = await make_world(engine, settings)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.get(a.url(), headers=a.headers["analyst"])
        assert ok.status_code == 200, ok.text
        assert ok.json()["role"] == "analyst"
        other = await c.get(a.url(), headers=b.headers["admin"])
        assert other.status_code == 404
        assert other.headers["content-type"].startswith("application/problem+json")
        anon = await c.get(a.url())
        assert anon.status_code == 401
    await engine.dispose()
    await app.state.db.dispose()
