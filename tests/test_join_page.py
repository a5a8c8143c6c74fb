"""The /join/ page in a real browser (Debian's Chromium through Playwright): the link of an
e-mailed invitation, opened by a person without an account (chooses a password) and by one with
an account (signs in and accepts). The mail goes through the real SMTP sink."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from tests import fixtures_browser
from tests.factories import PASSWORD, make_user, make_world
from tests.fixtures_access import new_email
from tests.fixtures_mail import mail_sink

browser = fixtures_browser.browser
live_server = fixtures_browser.live_server
placeholder_basemap = fixtures_browser.placeholder_basemap

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}


async def _invite(live, world, email: str, role: str, inviter: str) -> str:
    async with httpx.AsyncClient(base_url=live.url) as c:
        r = await c.post(
            world.url("/members"),
            json={"email": email, "role": role},
            headers=world.headers[inviter],
        )
    assert r.status_code == 202, r.text
    mail_sink().wait_for(email)
    links = [u for u in mail_sink().links(email) if "/join/#invitation=" in u]
    assert links and links[-1].startswith(live.url), links
    return links[-1]


async def _role(engine, campaign_id, email: str) -> str | None:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT m.role FROM membership m JOIN app_user u ON u.id = m.user_id "
                    "WHERE m.campaign_id = :c AND u.email = :e"
                ),
                {"c": campaign_id, "e": email},
            )
        ).scalar()


async def test_a_volunteer_without_account_joins_from_the_link(browser, live_server, owner_engine):
    world = await make_world(owner_engine, live_server.settings)
    email = new_email()
    link = await _invite(live_server, world, email, "volunteer", "organiser")
    page = await browser.new_page(viewport=PHONE, locale="fr-FR")
    try:
        await page.goto(link)
        await page.wait_for_selector("#register:not([hidden])")
        assert email in await page.locator("#status").inner_text()
        form = page.locator("#register-form")
        await form.locator("[name=password]").fill("mon mot de passe bénévole")
        await form.locator("[name=again]").fill("mon mot de passe bénévole")
        await form.locator("button").click()
        await page.wait_for_selector("#done:not([hidden])")
        assert "bénévole" in await page.locator("#done-text").inner_text()
        assert await page.locator("#next").get_attribute("href") == "/m/"
        assert "invitation=" not in page.url, "the token leaves the address bar"
    finally:
        await page.close()
    assert await _role(owner_engine, world.campaign_id, email) == "volunteer"


async def test_an_existing_account_signs_in_and_accepts(browser, live_server, owner_engine):
    world = await make_world(owner_engine, live_server.settings)
    email = new_email()
    await make_user(owner_engine, email)
    link = await _invite(live_server, world, email, "analyst", "admin")
    page = await browser.new_page(viewport=PHONE, locale="en-GB")
    try:
        await page.goto(link)
        await page.wait_for_selector("#signin:not([hidden])")
        form = page.locator("#signin-form")
        assert await form.locator("[name=email]").input_value() == email
        await form.locator("[name=password]").fill("not the password")
        await form.locator("button").click()
        await page.wait_for_selector("#error:not(:empty)")
        await form.locator("[name=password]").fill(PASSWORD)
        await form.locator("button").click()
        await page.wait_for_selector("#done:not([hidden])")
        href = await page.locator("#next").get_attribute("href")
        assert href == f"/analyst/?campaign={world.campaign_id}"
    finally:
        await page.close()
    assert await _role(owner_engine, world.campaign_id, email) == "analyst"
