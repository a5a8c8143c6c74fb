"""The maps in a real browser: Debian's Chromium through Playwright, phone viewport 360x640.

The app runs under uvicorn on 127.0.0.1 (tests/fixtures_browser.py) with default map settings and
the demo's placeholder basemap: every request the pages make must go to that one origin, the
CSP must block nothing they need, and axe-core (vendored in tests/vendor) must find no serious or
critical accessibility violation.
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
placeholder_basemap = fixtures_browser.placeholder_basemap

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 360, "height": 640}
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


class Watch:
    """Every request a browser context makes, and every CSP violation its pages report."""

    def __init__(self, ctx, page=None):
        self.urls: list[str] = []
        self.csp: list[str] = []
        ctx.on("request", lambda r: self.urls.append(r.url))
        ctx.on("page", self.page)
        if page is not None:
            self.page(page)

    def page(self, page) -> None:
        page.on(
            "console",
            lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def assert_same_origin(self, base: str) -> None:
        others = [u for u in self.urls if not u.startswith((base + "/", "data:", "blob:"))]
        assert others == [], others
        assert self.csp == [], self.csp


async def _axe(page, context: str = "body") -> None:
    """axe-core's WCAG 2 A/AA rules: no serious or critical violation."""
    if not await page.evaluate("() => !!window.axe"):
        await page.evaluate(AXE.read_text())  # run by the driver: the page's CSP does not apply
    found = await page.evaluate(
        """async (sel) => {
             const r = await axe.run(document.querySelector(sel), {
               runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
               resultTypes: ['violations']});
             return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
               .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target)
                                                      .join(' | ')}`);
           }""",
        context,
    )
    assert found == [], found


async def _marks(page) -> list[dict]:
    """The door marks on the map: their box on screen and how many doors each stands for."""
    return await page.evaluate(
        """() => [...document.querySelectorAll('#map .door-hit')].map(el => {
             const r = el.getBoundingClientRect();
             return {x: r.left, y: r.top, w: r.width, h: r.height,
                     n: Number(el.dataset.count), door: el.dataset.door || null};
           })"""
    )


def _assert_legible(marks: list[dict], n_doors: int) -> None:
    """Every door is under exactly one mark; marks are >= 44 px and no two overlap."""
    assert sum(m["n"] for m in marks) == n_doors
    for m in marks:
        assert m["w"] >= 44 and m["h"] >= 44, m
    for i, a in enumerate(marks):
        for b in marks[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (a, b)


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


async def _door_states(page) -> dict[str, int]:
    """Doors per status, read from the list (one row per door)."""
    return await page.evaluate(
        """() => { const c = {pending: 0, visited: 0, flagged: 0};
             for (const el of document.querySelectorAll('#list .door-row > .door'))
               for (const k of Object.keys(c)) if (el.classList.contains('door-' + k)) c[k]++;
             return c; }"""
    )


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
    n = len(tw.doors_a)
    link = await _invite_link(live_server, tw, tw.assignment_a)
    assert "/m/#invite=" in link
    ctx = await browser.new_context(viewport=PHONE, locale="fr-FR", service_workers="allow")
    watch = Watch(ctx)
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        # the invite token left the address bar once exchanged
        assert "invite=" not in page.url
        _assert_legible(await _marks(page), n)
        assert await _door_states(page) == {"pending": n, "visited": 0, "flagged": 0}
        assert await page.inner_text("#btn-locate") == "Me localiser"
        assert await page.locator("#notice").is_hidden()  # the basemap is there
        assert await page.locator(".walk-line").count() == 1
        attribution = await page.inner_text(".leaflet-control-attribution")
        assert "Placeholder map, not streets" in attribution
        # the turf is saved for offline use: doors, then the basemap tiles around it
        await page.wait_for_selector(
            "#offline-status[data-wanted]", state="attached", timeout=30000
        )
        saved = await page.evaluate("({...document.getElementById('offline-status').dataset})")
        assert int(saved["wanted"]) > 0 and saved["tiles"] == saved["wanted"], saved
        said = await page.text_content("#offline-status")
        assert re.fullmatch(r"Secteur enregistré pour le hors-ligne : \d+,\d Mo\.", said), said
        await _axe(page)

        # "next door" opens door no. 1, then follows the walking order
        await page.click("#btn-next")
        await page.wait_for_selector("#panel:not([hidden])")
        assert "Porte n° 1" in await page.inner_text("#panel-status")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "volunteer-door-panel.png"))
        await page.click('#outcomes [data-outcome="talked"]')
        await page.click("#btn-next")
        assert "Porte n° 2" in await page.inner_text("#panel-status")
        await page.click("#panel-close")
        await _tap_in_list(page, tw.doors_a[1], "not_home")
        await _tap_in_list(page, tw.doors_a[2], "refused")
        await page.click("#btn-view")  # back to the map
        assert (await _door_states(page))["visited"] == 3
        await _wait_queue(page, 0)
        stored = await _settled_visits(owner_engine, cid, 3)
        assert sorted((v.address_id, v.outcome) for v in stored) == sorted(
            [(tw.doors_a[0], "talked"), (tw.doors_a[1], "not_home"), (tw.doors_a[2], "refused")]
        )

        await page.reload()
        await page.wait_for_selector("body[data-loaded='1']")
        assert await _door_states(page) == {"pending": n - 3, "visited": 3, "flagged": 0}

        # offline: five more doors, the page says they wait, a reload still opens the page
        await page.wait_for_function(
            "() => navigator.serviceWorker.controller !== null", timeout=10000
        )
        await ctx.set_offline(True)
        for door in tw.doors_a[3:8]:
            await _tap_in_list(page, door, "not_home")
        await _wait_queue(page, 5)
        assert "5" in await page.inner_text("#queue")
        basemap: list = []
        page.on("response", lambda r: basemap.append(r) if "/basemap/" in r.url else None)
        await page.reload()
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await _wait_queue(page, 5)
        assert (await _door_states(page))["visited"] == 8
        _assert_legible(await _marks(page), n)
        # the streets are there: basemap tiles drawn, every one from the service worker's cache
        await page.wait_for_function(
            "() => document.querySelectorAll('#map .leaflet-tile-loaded').length > 0",
            timeout=15000,
        )
        assert basemap, "no basemap tile was asked for offline"
        assert all(r.from_service_worker and r.status in (200, 204) for r in basemap), [
            (r.url, r.status, r.from_service_worker) for r in basemap
        ]
        assert any(r.status == 200 for r in basemap)
        assert len(await _visits(owner_engine, cid)) == 3
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
        assert not [u for u in watch.urls if "/supporters" in u]
        watch.assert_same_origin(live_server.url)
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
    watch = Watch(ctx)
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
        assert any(re.search(r"^200 .*/basemap/", t) for t in tiles), tiles
        await _axe(page)
        watch.assert_same_origin(live_server.url)
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
    watch = Watch(ctx)
    urls = watch.urls
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
        assert [u for u in urls if "/basemap/" in u]
        await _axe(page)
        watch.assert_same_origin(live_server.url)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "analyst-map.png"))
    finally:
        await ctx.close()


async def test_dense_turf_stays_legible_at_every_zoom(browser, live_server, owner_engine):
    """80 doors of 92-13 with buildings of flats: at the opening zoom and two zooms in, every
    door is under exactly one mark, no two marks (44 px targets) overlap, flats show a count."""
    async with owner_engine.connect() as conn:
        b = (
            await conn.execute(
                text(
                    "SELECT lon, lat FROM address WHERE households >= 4 AND source = 'synthetic' "
                    "ORDER BY id LIMIT 1"
                )
            )
        ).one()
    tw = await make_turf_world(
        owner_engine,
        live_server.settings,
        n_doors=80,
        spot_a=(b.lon, b.lat),
        where_a="source = 'synthetic'",
    )
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx = await browser.new_context(viewport=PHONE, locale="fr-FR")
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        marks = await _marks(page)
        _assert_legible(marks, 80)
        assert any(m["n"] > 1 for m in marks)  # close doors share a mark at the opening zoom
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "volunteer-dense-turf.png"))
        for _ in range(2):
            await page.click(".leaflet-control-zoom-in")
            await page.wait_for_timeout(400)
            _assert_legible(await _marks(page), 80)
        assert await page.locator("#map .flats").count() > 0  # homes of a building: a count
        # a mark of several doors: tapping it zooms in, or (same spot) offers the doors
        group = page.locator("#map .door-hit[data-doors]").first
        if await group.count():
            before = len(await _marks(page))
            await group.dispatch_event("click")
            await page.wait_for_timeout(400)
            chooser = await page.locator("#panel-doors:not([hidden])").count()
            assert chooser or len(await _marks(page)) != before
    finally:
        await ctx.close()


async def _open_and_queue_one(browser, live_server, tw, link):
    """Open the invite link, wait for the turf to be saved offline, record one door offline."""
    ctx = await browser.new_context(viewport=PHONE, locale="fr-FR", service_workers="allow")
    page = await ctx.new_page()
    await page.goto(link)
    await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
    await page.wait_for_selector("#offline-status[data-wanted]", state="attached", timeout=30000)
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10000)
    await ctx.set_offline(True)
    await _tap_in_list(page, tw.doors_a[0], "not_home")
    await _wait_queue(page, 1)
    return ctx, page


async def _phone_holds_nothing(page) -> None:
    """No session, no queue, no copy of the doors, no basemap tile of the turf (the sign-in page
    may since have cached the public map config and world-scale tiles)."""
    left = await page.evaluate(
        """async () => {
             const urls = [];
             for (const k of await caches.keys()) {
               if (k.endsWith('-shell')) continue;
               for (const r of await (await caches.open(k)).keys()) urls.push(r.url);
             }
             return {session: localStorage.getItem('porte.m.session'), urls,
                     dbs: (await indexedDB.databases()).map(d => d.name)};
           }"""
    )
    assert left["session"] is None and left["dbs"] == [], left
    turf = [u for u in left["urls"] if "/assignments/" in u or re.search(r"/basemap/1[2-9]/", u)]
    assert turf == [], turf


async def test_revoked_invite_wipes_the_phone_and_says_why(browser, live_server, owner_engine):
    """Fails on the old code, which kept the doors and the queue after a revocation."""
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=4)
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx, page = await _open_and_queue_one(browser, live_server, tw, link)
    try:
        async with httpx.AsyncClient(base_url=live_server.url) as c:
            invites = await c.get(tw.world.url("/invites"), headers=tw.world.headers["organiser"])
            (invite,) = invites.json()
            gone = await c.delete(
                tw.world.url(f"/invites/{invite['id']}"), headers=tw.world.headers["organiser"]
            )
            assert gone.status_code == 204
        await ctx.set_offline(False)  # back online: the page tries to send, is refused (401)
        await page.wait_for_selector("#notice.important:has-text('révoqué')", timeout=20000)
        said = await page.inner_text("#notice")
        assert "effacés de ce téléphone" in said
        assert "1 résultat(s) n'ont pas pu être envoyés" in said
        assert await page.locator("#signin:not([hidden])").count() == 1
        await _phone_holds_nothing(page)
    finally:
        await ctx.close()


async def test_assignment_end_wipes_the_phone_after_sending(browser, live_server, owner_engine):
    """Fails on the old code (nothing was wiped). The queue is sent first, then the turf is wiped
    when the assignment's end passes (even with the page left open)."""
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=4)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE assignment SET ends_at = now() + interval '10 seconds' WHERE id = :a"),
            {"a": tw.assignment_a},
        )
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx, page = await _open_and_queue_one(browser, live_server, tw, link)
    try:
        await ctx.set_offline(False)
        await _wait_queue(page, 0)
        await page.wait_for_selector(
            "#notice.important:has-text('attribution est terminée')", timeout=20000
        )
        assert "n'ont pas pu" not in await page.inner_text("#notice")
        stored = await _settled_visits(owner_engine, tw.world.campaign_id, 1)
        assert [(v.address_id, v.outcome) for v in stored] == [(tw.doors_a[0], "not_home")]
        await _phone_holds_nothing(page)
    finally:
        await ctx.close()


async def test_storage_refused_keeps_the_doors_and_says_how_much_map(
    browser, live_server, owner_engine
):
    """The phone refuses space after two basemap tiles: the page says how much of the turf's map
    is saved, and the doors (stored first) are still there offline."""
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=6)
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx = await browser.new_context(viewport=PHONE, locale="en-GB", service_workers="allow")
    # the page's own cache writes fail like a full phone after the second one
    await ctx.add_init_script(
        """(() => { const put = Cache.prototype.put; let n = 0;
             Cache.prototype.put = function (...a) {
               if (++n > 2) return Promise.reject(new DOMException('full', 'QuotaExceededError'));
               return put.apply(this, a); }; })()"""
    )
    page = await ctx.new_page()
    try:
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await page.wait_for_selector(
            "#offline-status[data-wanted]", state="attached", timeout=30000
        )
        said = await page.text_content("#offline-status")
        assert said.startswith("The phone refuses more space: your doors are saved"), said
        assert re.search(r"the basemap only for \d+% of the turf", said), said
        saved = await page.evaluate("({...document.getElementById('offline-status').dataset})")
        assert int(saved["tiles"]) < int(saved["wanted"])
        await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        await ctx.set_offline(True)
        await page.reload()
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        assert sum(m["n"] for m in await _marks(page)) == 6
        assert "Offline: saved copy of your turf" in await page.inner_text("#notice")
    finally:
        await ctx.close()


async def test_organiser_page_greets_in_french_and_switches_to_english(
    browser, live_server, owner_engine
):
    """French by default (titles, roles, the API's refusals through Accept-Language, a greeting
    by name); the FR | EN switch turns the page, and what the API says, into English."""
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=4)
    organiser = tw.world.users["organiser"]
    email = await _email(owner_engine, organiser)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE app_user SET display_name = 'Camille Martin' WHERE id = :u"),
            {"u": organiser},
        )
    ctx = await browser.new_context(viewport={"width": 1000, "height": 700}, locale="fr-FR")
    watch = Watch(ctx)
    page = await ctx.new_page()
    try:
        await page.goto(f"{live_server.url}/organiser/?campaign={tw.world.campaign_id}")
        assert await page.inner_text("h1") == "Organisation du porte-à-porte"
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", "not the password")
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_function(
            "() => document.getElementById('signin-error').textContent.length > 0"
        )
        assert await page.inner_text("#signin-error") == "E-mail ou mot de passe incorrect."
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await page.wait_for_function(
            "() => document.getElementById('greeting').textContent.length > 0"
        )
        assert await page.inner_text("#greeting") == "Bonjour Camille Martin"
        assert "(organisateur)" in await page.inner_text("#campaign")
        assert await page.evaluate("document.documentElement.lang") == "fr"
        assert await page.title() == "Porte-à-porte — organisation"
        assert await page.get_attribute('#lang button[data-lang="fr"]', "aria-pressed") == "true"
        await _axe(page, "header")

        await page.click('#lang button[data-lang="en"]')
        await page.wait_for_url("**lang=en**")
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        await page.wait_for_function(
            "() => document.getElementById('greeting').textContent.startsWith('Hello')"
        )
        assert await page.inner_text("#greeting") == "Hello Camille Martin"
        assert await page.inner_text("h1") == "Canvassing organiser"
        assert "(organiser)" in await page.inner_text("#campaign")
        assert await page.evaluate("document.documentElement.lang") == "en"
        # the choice is kept on the device: the volunteer page follows it
        assert await page.evaluate("localStorage.getItem('porte.lang')") == "en"
        # and the API answers this page in English
        said = await page.evaluate(
            """async () => { try { await Porte.api('/districts/NOPE'); }
                             catch (e) { return e.message; } }"""
        )
        assert said.startswith("No district with code 'NOPE'")
        watch.assert_same_origin(live_server.url)
    finally:
        await ctx.close()


async def test_queue_waits_as_long_as_retry_after_says_with_jitter(
    browser, live_server, owner_engine
):
    """The server answers the first batch 503 with Retry-After: 3 (as while the database or
    the server restarts). The phone keeps the visit, says when it tries again, sends nothing
    before 3 s even when another visit is recorded meanwhile, then sends both once; the wait
    is Retry-After plus up to 50 % of random jitter."""
    import json
    import time

    tw = await make_turf_world(owner_engine, live_server.settings)
    cid = tw.world.campaign_id
    link = await _invite_link(live_server, tw, tw.assignment_a)
    ctx = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await ctx.new_page()
    posts: list[float] = []

    async def visits(route):
        posts.append(time.monotonic())
        if len(posts) > 1:
            await route.continue_()
            return
        body = {"title": "Service unavailable", "status": 503, "retry_after": 3,
                "detail": "The database cannot answer right now."}  # fmt: skip
        await route.fulfill(
            status=503,
            headers={"Retry-After": "3", "Content-Type": "application/problem+json"},
            body=json.dumps(body),
        )

    try:
        await page.route(re.compile(r".*/campaigns/[^/]+/visits$"), visits)
        await page.goto(link)
        await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        # The delay the queue computes for "Retry-After: 3": never less, at most 4.5 s, spread.
        delays = await page.evaluate(
            "() => Array.from({length: 400}, () => PorteM.retryDelay({retryAfter: 3}, 1))"
        )
        assert min(delays) >= 3000 and max(delays) <= 4500, (min(delays), max(delays))
        assert max(delays) - min(delays) > 750, "no jitter"
        # Without Retry-After (network down): 2 s, 4 s, 8 s ... capped at 5 min, jittered.
        grows = await page.evaluate("() => [1, 2, 3, 12, 40].map(k => PorteM.retryDelay(null, k))")
        for k, (low, got) in enumerate(zip([2000, 4000, 8000, 300000, 300000], grows, strict=True)):
            assert low <= got <= low * 1.5, (k, got)

        await _tap_in_list(page, tw.doors_a[0], "talked")
        await page.wait_for_function("() => document.body.dataset.retryIn", timeout=15000)
        wait = int(await page.evaluate("() => document.body.dataset.retryIn"))
        assert 3000 <= wait <= 4500, wait
        # the toast rounds the wait up to whole seconds (never sooner than it comes): 3, 4 or 5 s
        assert f"in {-(-wait // 1000)} s." in await page.inner_text("#toast")
        await _tap_in_list(page, tw.doors_a[1], "not_home")  # calls sync(): must not send yet
        await _wait_queue(page, 0)
        assert len(posts) == 2, posts  # the refused try, then one retry with both visits
        gap = posts[1] - posts[0]
        assert wait / 1000 - 0.2 <= gap <= wait / 1000 + 3, (gap, wait)
        stored = await _settled_visits(owner_engine, cid, 2)
        assert sorted((v.address_id, v.outcome) for v in stored) == sorted(
            [(tw.doors_a[0], "talked"), (tw.doors_a[1], "not_home")]
        )
    finally:
        await ctx.close()


async def test_volunteer_page_is_french_unless_the_phone_or_the_saved_choice_says_english(
    browser, live_server, owner_engine
):
    """The phone page: French by default (a German phone too), English for a phone set to
    English, and English on a French phone when the saved choice (``porte.lang``, which the
    organiser page's FR | EN switch stores) says so; the API's words follow (Accept-Language)."""
    tw = await make_turf_world(owner_engine, live_server.settings, n_doors=3)
    link = await _invite_link(live_server, tw, tw.assignment_a)
    cases = [
        ("de-DE", None, "fr", "Me localiser", "Outils"),
        ("en-GB", None, "en", "Locate me", "Tools"),
        ("fr-FR", "en", "en", "Locate me", "Tools"),
        ("en-US", "fr", "fr", "Me localiser", "Outils"),
    ]
    for locale, saved, lang, locate, tools in cases:
        ctx = await browser.new_context(viewport=PHONE, locale=locale)
        try:
            page = await ctx.new_page()
            if saved:
                await page.add_init_script(f"localStorage.setItem('porte.lang', '{saved}')")
            await page.goto(link)
            await page.wait_for_selector("body[data-loaded='1']", timeout=20000)
            assert await page.evaluate("document.documentElement.lang") == lang, locale
            assert await page.inner_text("#btn-locate") == locate, locale
            assert await page.get_attribute("nav.tools", "aria-label") == tools
            said = await page.evaluate(
                """async () => { try { await Porte.api('/districts/NOPE'); }
                                 catch (e) { return e.message; } }"""
            )
            expected = "No district with code" if lang == "en" else "Aucun bureau de vote"
            assert said.startswith(expected), (locale, said)
        finally:
            await ctx.close()
