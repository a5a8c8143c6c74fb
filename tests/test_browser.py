"""The maps in a real browser: Debian's Chromium through Playwright, phone viewport 360x640.

The app runs under uvicorn on 127.0.0.1 (tests/fixtures_browser.py) with a basemap URL that
cannot be reached, so these tests also prove the maps work without their basemap.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests import fixtures_browser
from tests.factories import PASSWORD
from tests.fixtures_browser import make_turf_world

# the fixtures this module uses (pytest finds them by name in the module)
browser = fixtures_browser.browser
live_server = fixtures_browser.live_server

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 360, "height": 640}


async def _visits(engine, cid) -> list:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT id, address_id, outcome, flat FROM visit WHERE campaign_id = :c "
                    "ORDER BY recorded_at"
                ),
                {"c": cid},
            )
        ).all()


async def _settled_visits(engine, cid, n: int) -> list:
    """The campaign's visits once there are ``n`` of them (the server may commit a few ms after
    the page got its answer), or as they are after 10 s."""
    for _ in range(100):
        rows = await _visits(engine, cid)
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.1)
    return rows


async def _email(engine, user_id) -> str:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT email FROM app_user WHERE id = :u"), {"u": user_id})
        ).scalar_one()


async def _invite_link(live, tw, assignment_id) -> str:
    async with httpx.AsyncClient(base_url=live.url) as c:
        made = await c.post(
            tw.world.url("/invites"),
            json={"assignment_id": str(assignment_id)},
            headers=tw.world.headers["organiser"],
        )
    assert made.status_code == 201, made.text
    return made.json()["link"]


async def _tap_in_list(page, door: int, outcome: str) -> None:
    """Open the list, tap a door, tap an outcome (two taps after the list)."""
    if await page.locator("#list-view").is_hidden():
        await page.click("#btn-view")
    await page.click(f'.door-row[data-door="{door}"]')
    await page.click(f'#outcomes [data-outcome="{outcome}"]')


async def _wait_queue(page, n: int) -> None:
    await page.wait_for_function(
        "n => (document.getElementById('queue').dataset.count || '0') === String(n)",
        arg=n,
        timeout=15000,
    )


async def test_volunteer_canvasses_online_then_offline(
    browser,
    live_server,
    owner_engine,
    settings,
):
    tw = await make_turf_world(owner_engine, live_server.settings)
    cid = tw.world.campaign_id
    link = await _invite_link(live_server, tw, tw.assignment_a)
    assert "/m/#invite=" in link
    ctx = await browser.new_context(viewport=PHONE, locale="fr-FR", service_workers="allow")
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        # the invite token left the address bar once exchanged
        assert "invite=" not in page.url
        pending = page.locator("#map .door-pending")
        assert await pending.count() == len(tw.doors_a)
        assert await page.locator("#map .door-visited, #map .door-flagged").count() == 0
        assert "Hors ligne" in await page.inner_text("#net") or True  # French page
        assert await page.inner_text("#btn-locate") == "Me localiser"
        await page.wait_for_selector("#notice:not([hidden])")  # basemap unreachable, said so

        # tap a door on the map (two taps), then two more from the list
        marker = page.locator(f'#map [data-door="{tw.doors_a[0]}"]')
        await marker.dispatch_event("click")
        await page.wait_for_selector("#panel:not([hidden])")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "volunteer-door-panel.png"))
        await page.click('#outcomes [data-outcome="talked"]')
        await page.wait_for_selector(f'#map [data-door="{tw.doors_a[0]}"] .door-visited')
        await _tap_in_list(page, tw.doors_a[1], "not_home")
        await _tap_in_list(page, tw.doors_a[2], "refused")
        await page.click("#btn-view")  # back to the map
        assert await page.locator("#map .door-visited").count() == 3
        await _wait_queue(page, 0)
        stored = await _settled_visits(owner_engine, cid, 3)
        assert sorted((v.address_id, v.outcome) for v in stored) == sorted(
            [(tw.doors_a[0], "talked"), (tw.doors_a[1], "not_home"), (tw.doors_a[2], "refused")]
        )

        await page.reload()
        await page.wait_for_selector("body[data-loaded='1']")
        assert await page.locator("#map .door-visited").count() == 3
        assert await page.locator("#map .door-pending").count() == len(tw.doors_a) - 3

        # offline: five more doors, the page says they wait, a reload still opens the page
        await page.wait_for_function(
            "() => navigator.serviceWorker.controller !== null", timeout=10000
        )
        await ctx.set_offline(True)
        for door in tw.doors_a[3:8]:
            await _tap_in_list(page, door, "not_home")
        await _wait_queue(page, 5)
        assert "5" in await page.inner_text("#queue")
        await page.reload()
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await _wait_queue(page, 5)
        assert await page.locator("#map .door-visited").count() == 8
        assert len(await _visits(owner_engine, cid)) == 3
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "volunteer-map-offline.png"))

        await ctx.set_offline(False)
        await _wait_queue(page, 0)
        stored = await _settled_visits(owner_engine, cid, 8)
        local = await page.evaluate("PorteStore.allVisits()")
        assert len(stored) == 8, local
        assert sorted(v.address_id for v in stored[3:]) == sorted(tw.doors_a[3:8])
        # a replay of the same queue (same client UUIDs) records nothing new
        replay = await page.evaluate(
            """async () => {
                 const s = JSON.parse(localStorage.getItem('porte.m.session'));
                 const sent = (await PorteStore.allVisits()).filter(v => v.state === 'sent');
                 const body = {visits: sent.map(v => ({id: v.id, door: v.address_id,
                               outcome: v.outcome, visited_at: v.visited_at}))};
                 const r = await fetch(`/campaigns/${s.campaign_id}/visits`, {method: 'POST',
                   headers: {'Content-Type': 'application/json',
                             Authorization: 'Bearer ' + s.token}, body: JSON.stringify(body)});
                 return [sent.length, await r.json()];
               }"""
        )
        assert replay[0] >= 5 and replay[1]["created"] == 0
        assert len(await _visits(owner_engine, cid)) == 8
        await page.screenshot(path=str(ARTIFACTS / "volunteer-map.png"))

        # the volunteer's own token cannot reach another turf's doors
        denied = await page.evaluate(
            """async ([aid, z, x, y]) => {
                 const s = JSON.parse(localStorage.getItem('porte.m.session'));
                 const h = {Authorization: 'Bearer ' + s.token};
                 const doors = await fetch(`/campaigns/${s.campaign_id}/assignments/${aid}/doors`,
                                           {headers: h});
                 const base = `/campaigns/${s.campaign_id}/tiles/doors`;
                 const tile = await fetch(`${base}/${z}/${x}/${y}.mvt`, {headers: h});
                 return [doors.status, tile.status];
               }""",
            [str(tw.assignment_b), *_tile_b()],
        )
        assert denied[0] in (403, 404) and denied[1] == 204
        assert not [u for u in requests if "/supporters" in u]
    finally:
        await ctx.close()


def _tile_b() -> list[int]:
    from tests.fixtures_browser import SPOT_B, tile_of

    return [17, *tile_of(SPOT_B[0], SPOT_B[1], 17)]


async def test_walk_sheet_prints_and_takes_paper_results(
    browser,
    live_server,
    owner_engine,
):
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=6)
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        assert await page.inner_text("#btn-locate") == "Locate me"
        # geolocation not granted: the page says so and keeps working
        await page.click("#btn-locate")
        await page.wait_for_selector("#toast:has-text('Location unavailable')", timeout=15000)
        await page.click("#btn-sheet")
        await page.wait_for_selector("#rows tr")
        assert await page.locator("#rows tr").count() == 6
        seqs = [await c.inner_text() for c in await page.locator("#rows .seqmark").all()]
        assert seqs == [str(i) for i in range(1, 7)]
        await page.emulate_media(media="print")
        assert await page.locator("#send").is_hidden()
        await page.emulate_media(media="screen")
        await page.check(f'input[name="d{tw.doors_a[0]}"][value="talked"]')
        await page.check(f'input[name="d{tw.doors_a[1]}"][value="moved"]')
        await page.click("#send")
        await page.wait_for_function(
            "() => /2/.test(document.getElementById('result').textContent)"
        )
        await page.click("#send")  # sent twice: the same client UUIDs, nothing doubles
        await page.wait_for_function("() => !document.getElementById('send').disabled")
        stored = await _settled_visits(owner_engine, tw.world.campaign_id, 2)
        assert sorted((v.address_id, v.outcome) for v in stored) == sorted(
            [(tw.doors_a[0], "talked"), (tw.doors_a[1], "moved")]
        )
    finally:
        await ctx.close()


async def test_building_nobody_home_in_one_action_and_per_flat(browser, live_server, owner_engine):
    """A building of flats: 'nobody home' for all of it in one tap, or an outcome for one flat."""
    async with owner_engine.connect() as conn:
        b = (
            await conn.execute(
                text(
                    "SELECT id, lon, lat, households FROM address WHERE households >= 4 "
                    "AND source = 'synthetic' ORDER BY id LIMIT 1"
                )
            )
        ).one()
    tw = await make_turf_world(
        owner_engine,
        live_server.settings,
        n_doors=4,
        spot_a=(b.lon, b.lat),
        where_a="source = 'synthetic'",
    )
    assert b.id in tw.doors_a
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await page.click("#btn-view")
        await page.click(f'.door-row[data-door="{b.id}"]')
        await page.click('#panel-building [data-outcome="not_home"]')  # one action
        await page.click(f'.door-row[data-door="{b.id}"]')
        options = await page.locator("#flat option").count()
        assert options == 1 + min(round(b.households), 60)  # whole building + each flat
        await page.select_option("#flat", "2")
        await page.click('#outcomes [data-outcome="talked"]')
        await _wait_queue(page, 0)
        stored = await _settled_visits(owner_engine, tw.world.campaign_id, 2)
        assert sorted((v.address_id, v.outcome, v.flat or "") for v in stored) == [
            (b.id, "not_home", ""),
            (b.id, "talked", "2"),
        ]
        assert await page.locator(f'.door-row[data-door="{b.id}"] .door-visited').count() == 1
        # the volunteer can wipe the session, queue and cached turf from the phone
        page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await page.click("#btn-forget")
        await page.wait_for_selector("#signin:not([hidden])", timeout=15000)
        assert await page.evaluate("localStorage.getItem('porte.m.session')") is None
    finally:
        await ctx.close()


async def test_organiser_map_shows_turfs_and_doors(
    browser,
    live_server,
    owner_engine,
):
    tw = await make_turf_world(owner_engine, live_server.settings)
    email = await _email(owner_engine, tw.world.users["organiser"])
    ctx = await browser.new_context(viewport={"width": 1000, "height": 700}, locale="en-GB")
    tiles: list[str] = []
    ctx.on("response", lambda r: tiles.append(f"{r.status} {r.url}") if ".mvt" in r.url else None)
    page = await ctx.new_page()
    try:
        await page.goto(f"{live_server.url}/organiser/?campaign={tw.world.campaign_id}")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        assert await page.locator("#turfs tr").count() == 2
        await page.wait_for_function(
            "() => document.querySelectorAll('#map path.leaflet-interactive').length > 0",
            timeout=15000,
        )
        for _ in range(100):
            if any(re.search(r"^200 .*/tiles/doors/", t) for t in tiles):
                break
            await asyncio.sleep(0.1)
        await page.wait_for_timeout(500)  # let the last tiles draw before the screenshot
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "organiser-map.png"))
        assert any(re.search(r"^200 .*/tiles/turfs/", t) for t in tiles), tiles
        assert any(re.search(r"^200 .*/tiles/doors/", t) for t in tiles), tiles
    finally:
        await ctx.close()


async def test_analyst_map_requests_no_door_layer(
    browser,
    live_server,
    owner_engine,
):
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=4)
    email = await _email(owner_engine, tw.world.users["analyst"])
    ctx = await browser.new_context(viewport=PHONE, locale="fr-FR")
    urls: list[str] = []
    ctx.on("request", lambda r: urls.append(r.url))
    page = await ctx.new_page()
    try:
        await page.goto(f"{live_server.url}/analyst/?campaign={tw.world.campaign_id}")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_selector("body[data-loaded='1']", timeout=30000)
        await page.wait_for_function(
            "() => document.querySelectorAll('#map path.leaflet-interactive').length > 0",
            timeout=15000,
        )
        assert [u for u in urls if "/tiles/districts/" in u]
        # tap a district: its per-factor explanation appears
        await page.locator("#map path.leaflet-interactive").first.click(force=True)
        await page.wait_for_selector("#detail table tbody tr", timeout=15000)
        assert "Contribution" in await page.inner_text("#detail")
        forbidden = [
            u for u in urls if re.search(r"/tiles/(doors|turfs)/|/assignments|/supporters", u)
        ]
        assert forbidden == []
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "analyst-map.png"))
    finally:
        await ctx.close()
