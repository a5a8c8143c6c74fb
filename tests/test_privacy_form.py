"""The public privacy form cannot be used against people.

- a withdrawal, an export or an erasure asked on the form takes effect only once the person opens
  the single-use link sent to the e-mail held for them (real SMTP: the suite's aiosmtpd sink);
  the form answers the same whether the address is known or not, and the mail server is outside
  the answer's path;
- a door objection takes effect at once, is audited with the sender's coarse network (never the
  address), is limited per client and per campaign, raises the burst alert, and the admin reviews
  and reverts a flood in bulk.

Every person here is SYNTHETIC.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import make_world
from tests.fixtures_access import client_for
from tests.fixtures_browser import free_port, uvicorn_thread
from tests.fixtures_mail import mail_sink
from tests.fixtures_supporters import person

EN = {"Accept-Language": "en"}


def _email(tag: str) -> str:
    return f"form-{tag}-{uuid.uuid4().hex[:8]}@example.test"


async def _supporter(client, world, email: str, n: int = 2000) -> str:
    r = await client.post(
        world.url("/supporters"), headers=world.headers["admin"], json=person(n, email=email)
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _status(owner_engine, world, sid: str) -> str | None:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT status FROM supporter WHERE campaign_id = :c AND id = :i"),
                {"c": world.campaign_id, "i": uuid.UUID(sid)},
            )
        ).scalar()


def _code(link: str) -> str:
    assert "#code=" in link, link
    return link.split("#code=", 1)[1]


def _latest_code(email: str) -> str:
    """The code of the newest link sent to ``email``."""
    return _code([u for u in mail_sink().links(email) if "#code=" in u][-1])


async def _form(client, world, **data) -> httpx.Response:
    return await client.post(f"/privacy/{world.campaign_id}/objection", data=data, headers=EN)


async def _confirm(client, world, code: str) -> httpx.Response:
    return await client.post(
        f"/privacy/{world.campaign_id}/confirm", data={"code": code}, headers=EN
    )


# ---------------------------------------------------------------- e-mailed requests
async def test_a_withdrawal_waits_for_the_link_sent_to_the_held_address(app, world, owner_engine):
    email = _email("withdraw")
    async with client_for(app) as c:
        sid = await _supporter(c, world, email)
        # typed in another case, with spaces: matched by the keyed hash, sent to the held address
        r = await _form(c, world, kind="withdrawal", email=f"  {email.upper()} ")
        assert r.status_code == 200, r.text
        assert await _status(owner_engine, world, sid) == "active", "nothing happens before"
        (message,) = mail_sink().wait_for(email)
        assert str(message["To"]) == email
        link = [u for u in mail_sink().links(email) if "#code=" in u][0]
        assert link.startswith(
            f"http://127.0.0.1:8000/privacy/{world.campaign_id}/confirm?lang=en#code="
        )
        code = _code(link)

        page = await c.get(f"/privacy/{world.campaign_id}/confirm", headers=EN)
        assert page.status_code == 200 and 'name="code"' in page.text
        assert "/static/privacy/confirm.js" in page.text
        assert (await c.get("/static/privacy/confirm.js")).status_code == 200

        r = await _confirm(c, world, code)
        assert r.status_code == 200, r.text
        assert await _status(owner_engine, world, sid) == "withdrawn"
        again = await _confirm(c, world, code)  # single use
        assert again.status_code == 404
        assert (await _confirm(c, world, "not-a-code")).status_code == 404
    async with owner_engine.connect() as conn:
        req = (
            await conn.execute(
                text(
                    "SELECT status, outcome, token_hash, confirmed_at FROM privacy_request "
                    "WHERE campaign_id = :c AND kind = 'withdrawal'"
                ),
                {"c": world.campaign_id},
            )
        ).one()
        event = (
            await conn.execute(
                text(
                    "SELECT actor_user_id, details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'gdpr.withdraw'"
                ),
                {"c": world.campaign_id},
            )
        ).one()
    assert (req.status, req.outcome, req.token_hash) == ("done", "withdrawn", None)
    assert req.confirmed_at is not None
    assert event.actor_user_id is None and event.details["channel"] == "privacy_form"


async def test_export_and_erasure_by_link(app, world, owner_engine):
    email = _email("export")
    async with client_for(app) as c:
        sid = await _supporter(c, world, email, n=2001)
        r = await _form(c, world, kind="export", email=email)
        assert r.status_code == 200
        mail_sink().wait_for(email)
        r = await _confirm(c, world, _latest_code(email))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"].startswith("attachment")
        data = r.json()
        assert data["supporter"]["email"] == email and data["supporter"]["id"] == sid
        assert {c["purpose"] for c in data["consents"]} == {"contact", "mapping"}

        r = await _form(c, world, kind="erasure", email=email)
        assert r.status_code == 200
        mail_sink().wait_for(email, count=2)
        assert await _status(owner_engine, world, sid) == "active"
        r = await _confirm(c, world, _latest_code(email))
        assert r.status_code == 200
    assert await _status(owner_engine, world, sid) is None


async def test_only_a_hash_of_the_link_is_stored_and_it_expires(app, world, owner_engine):
    email = _email("expiry")
    async with client_for(app) as c:
        sid = await _supporter(c, world, email, n=2002)
        await _form(c, world, kind="withdrawal", email=email)
        mail_sink().wait_for(email)
        code = _latest_code(email)
        async with owner_engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT id, token_hash, expires_at - received_at AS ttl, "
                        "privacy_request::text AS dump FROM privacy_request "
                        "WHERE campaign_id = :c AND status = 'unconfirmed'"
                    ),
                    {"c": world.campaign_id},
                )
            ).one()
            assert code not in row.dump
            assert row.token_hash == hashlib.sha256(code.encode()).hexdigest()
            assert row.ttl.total_seconds() == 48 * 3600
            # 48 hours later
            await conn.execute(
                text(
                    "UPDATE privacy_request SET received_at = received_at - interval '48 hours', "
                    "expires_at = expires_at - interval '48 hours' WHERE campaign_id = :c "
                    "AND id = :i"
                ),
                {"c": world.campaign_id, "i": row.id},
            )
        r = await _confirm(c, world, code)
        assert r.status_code == 404 and "48" in r.text
    assert await _status(owner_engine, world, sid) == "active"


async def test_the_form_answers_the_same_whether_the_address_is_known(app, world, owner_engine):
    known = _email("known")
    async with client_for(app) as c:
        await _supporter(c, world, known, n=2003)
        for kind in ("withdrawal", "export", "erasure"):
            a = await _form(c, world, kind=kind, email=known)
            b = await _form(c, world, kind=kind, email=_email("unknown"))
            assert a.status_code == b.status_code == 200, (kind, a.text, b.text)
            assert a.text == b.text, kind
            assert {k: v for k, v in a.headers.items() if k not in ("x-request-id",)} == {
                k: v for k, v in b.headers.items() if k not in ("x-request-id",)
            }
        # a malformed address is refused the same way for everyone, naming the field
        r = await _form(c, world, kind="erasure", email="not an email")
        assert r.status_code == 422 and r.json()["field"] == "email"


class _Tarpit:
    """A TCP port that accepts connections and never speaks: an SMTP server that hangs."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


async def test_the_mail_server_is_outside_the_answer(sample_db, owner_engine):
    """A hanging mail server changes neither the answer nor its timing; the admin sees why no
    link arrived."""
    with _Tarpit() as port:
        settings = make_settings(sample_db, smtp_port=port, smtp_timeout_seconds=2.0)
        w = await make_world(owner_engine, settings)
        known = _email("slow")
        app = create_app(settings)
        with uvicorn_thread(app, free_port()) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                r = await c.post(
                    w.url("/supporters"), headers=w.headers["admin"], json=person(2004, email=known)
                )
                assert r.status_code == 201, r.text
                timings = {}
                bodies = {}
                for label, email in (("unknown", _email("nobody")), ("known", known)):
                    start = time.perf_counter()
                    r = await c.post(
                        f"/privacy/{w.campaign_id}/objection",
                        data={"kind": "withdrawal", "email": email},
                        headers=EN,
                    )
                    timings[label] = time.perf_counter() - start
                    bodies[label] = (r.status_code, r.text)
                assert bodies["known"] == bodies["unknown"]
                assert bodies["known"][0] == 200
                # sending would take the SMTP timeout (2 s); the answer does not wait for it
                assert timings["known"] < 1.5, timings
                outcome = None
                for _ in range(100):
                    async with owner_engine.connect() as conn:
                        outcome = (
                            await conn.execute(
                                text(
                                    "SELECT outcome FROM privacy_request WHERE campaign_id = :c "
                                    "AND status = 'unconfirmed'"
                                ),
                                {"c": w.campaign_id},
                            )
                        ).scalar()
                    if outcome == "mail_failed":
                        break
                    await asyncio.sleep(0.1)
                assert outcome == "mail_failed"


async def test_no_more_than_a_few_links_per_person_and_day(app, world, owner_engine):
    """The form cannot be used to flood someone's mailbox."""
    email = _email("flood")
    async with client_for(app) as c:
        await _supporter(c, world, email, n=2005)
        answers = {(await _form(c, world, kind="export", email=email)).text for _ in range(5)}
    assert len(answers) == 1
    await asyncio.sleep(0.5)
    assert len(mail_sink().to(email)) == 3


# ---------------------------------------------------------------- door objections
async def _bruz_doors(owner_engine, n: int) -> list[tuple[int, str]]:
    """``n`` Bruz doors with a number and no suffix, and their one-line address."""
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT min(id) AS id, numero, nom_voie FROM address "
                    "WHERE code_insee = '35047' AND numero IS NOT NULL AND suffixe IS NULL "
                    "GROUP BY numero, nom_voie HAVING count(*) = 1 "
                    "ORDER BY numero, nom_voie LIMIT :n"
                ),
                {"n": n},
            )
        ).all()
    return [(r.id, f"{r.numero} {r.nom_voie}, 35170 Bruz") for r in rows]


async def _flags(owner_engine, world) -> set[int]:
    async with owner_engine.connect() as conn:
        return set(
            (
                await conn.execute(
                    text("SELECT address_id FROM door_flag WHERE campaign_id = :c"),
                    {"c": world.campaign_id},
                )
            ).scalars()
        )


async def test_a_door_objection_works_at_once_audited_with_a_coarse_origin(
    app, world, owner_engine
):
    (door, address), (door6, address6) = await _bruz_doors(owner_engine, 2)
    async with client_for(app, "203.0.113.77") as c:
        r = await _form(c, world, kind="objection", address=address)
        assert r.status_code == 200, r.text
    async with client_for(app, "2001:db8:abcd:12::1") as c:
        r = await _form(c, world, kind="objection", address=address6)
        assert r.status_code == 200, r.text
    assert await _flags(owner_engine, world) == {door, door6}
    async with owner_engine.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT client, role, actor_user_id, details, e::text AS dump "
                    "FROM audit_event e WHERE campaign_id = :c AND action = 'privacy.objection' "
                    "ORDER BY id"
                ),
                {"c": world.campaign_id},
            )
        ).all()
        requests = (
            await conn.execute(
                text(
                    "SELECT origin, address_id, r::text AS dump FROM privacy_request r "
                    "WHERE campaign_id = :c ORDER BY received_at"
                ),
                {"c": world.campaign_id},
            )
        ).all()
    assert [e.client for e in events] == ["203.0.113.0/24", "2001:db8:abcd::/48"]
    assert [(r.origin, r.address_id) for r in requests] == [
        ("203.0.113.0/24", door),
        ("2001:db8:abcd::/48", door6),
    ]
    for row in (*events, *requests):
        assert "203.0.113.77" not in row.dump and "2001:db8:abcd:12::1" not in row.dump
    assert events[0].actor_user_id is None and events[0].role == "public"
    assert events[0].details["door"] == door


@pytest.fixture(scope="module")
async def limited_app(sample_db):
    settings = make_settings(
        sample_db,
        privacy_objections_per_origin_hour=2,
        privacy_objections_per_campaign_hour=5,
        privacy_objection_alert_per_hour=3,
    )
    app = create_app(settings)
    yield app
    await app.state.db.dispose()


async def test_objections_are_limited_per_client_and_per_campaign_and_raise_the_alert(
    limited_app, owner_engine
):
    settings = limited_app.state.settings
    w = await make_world(owner_engine, settings)
    doors = await _bruz_doors(owner_engine, 8)
    answers = []
    for i, (ip, (_, address)) in enumerate(
        zip(
            ["198.51.100.1", "198.51.100.2", "198.51.100.3", "192.0.2.1", "192.0.2.9"]
            + ["203.0.113.1", "203.0.113.2"],
            doors,
            strict=False,
        )
    ):
        async with client_for(limited_app, ip) as c:
            r = await _form(c, w, kind="objection", address=address)
            answers.append((i, ip, r.status_code))
    # 198.51.100.0/24: two, then refused (per client network); the campaign: five, then refused
    assert [a[2] for a in answers] == [200, 200, 429, 200, 200, 200, 429], answers
    async with client_for(limited_app, "198.51.100.3") as c:
        r = await _form(c, w, kind="objection", address=doors[7][1])
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "campaign" in r.json()["detail"] or "hour" in r.json()["detail"]
    assert len(await _flags(owner_engine, w)) == 5
    async with owner_engine.connect() as conn:
        flagged = (
            await conn.execute(
                text(
                    "SELECT flagged FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'privacy.objection' ORDER BY id"
                ),
                {"c": w.campaign_id},
            )
        ).scalars()
        flagged = list(flagged)
    assert flagged == [False, False, False, True, True]  # more than 3 in an hour: the alert
    async with client_for(limited_app) as c:  # the admin sees the alert with the campaign
        r = await c.get(w.url(), headers=w.headers["admin"])
        assert r.status_code == 200 and r.json()["flagged_audit_events"] == 2


async def test_admin_reviews_and_reverts_a_flood_in_bulk(app, world, owner_engine):
    doors = await _bruz_doors(owner_engine, 6)
    h = world.headers["admin"]
    # a door flagged by the admin before (a trusted flag), then "objected to" by the flood too
    trusted_door, trusted_address = doors[5]
    async with client_for(app) as c:
        r = await c.post(
            world.url("/supporters"), headers=h, json=person(2100, address=trusted_address)
        )
        assert r.json()["geocode_level"] == "housenumber", r.text
        r = await c.post(world.url(f"/supporters/{r.json()['id']}/objection"), headers=h)
        assert r.status_code == 200
    flood = [*doors[:3], doors[5]]
    for i, (_, address) in enumerate(flood):
        async with client_for(app, f"198.18.7.{10 + i}") as c:
            assert (await _form(c, world, kind="objection", address=address)).status_code == 200
    legit_door, legit_address = doors[3]
    async with client_for(app, "192.0.2.200") as c:
        assert (await _form(c, world, kind="objection", address=legit_address)).status_code == 200
    assert await _flags(owner_engine, world) == {d for d, _ in doors[:4]} | {trusted_door}

    async with client_for(app) as c:
        listed = await c.get(world.url("/door-objections?origin=198.18.7.0/24"), headers=h)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert {i["address_id"] for i in body["items"]} == {d for d, _ in flood}
        assert {i["origin"] for i in body["items"]} == {"198.18.7.0/24"}
        assert all(i["street"] and i["lon"] is not None for i in body["items"])
        by_door = {i["address_id"]: i for i in body["items"]}
        assert by_door[trusted_door]["revertible"] is False  # the flag is the admin's
        everything = (await c.get(world.url("/door-objections"), headers=h)).json()
        assert everything["by_origin"][0] == {"origin": "198.18.7.0/24", "objections": 4}

        # nothing to go on: refused, naming the field
        r = await c.post(world.url("/door-objections/revert"), headers=h, json={})
        assert r.status_code == 422 and r.json()["field"] == "ids"
        r = await c.post(
            world.url("/door-objections/revert"), headers=h, json={"origin": "198.18.7.0/24"}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"reverted": 4, "doors_unflagged": 3}
        for role in ("organiser", "analyst", "volunteer"):
            r = await c.get(world.url("/door-objections"), headers=world.headers[role])
            assert r.status_code == 403
        after = (await c.get(world.url("/door-objections?status=reverted"), headers=h)).json()
        assert len(after["items"]) == 4
        # one objection reverted by its id
        legit_id = next(i["id"] for i in everything["items"] if i["address_id"] == legit_door)
        r = await c.post(world.url("/door-objections/revert"), headers=h, json={"ids": [legit_id]})
        assert r.json() == {"reverted": 1, "doors_unflagged": 1}
    # the trusted flag stays; the flood's and the reverted one are gone
    assert await _flags(owner_engine, world) == {trusted_door}
    async with owner_engine.connect() as conn:
        actions = (
            await conn.execute(
                text(
                    "SELECT action, row_count FROM audit_event WHERE campaign_id = :c "
                    "AND action LIKE 'door_objection.%' ORDER BY id"
                ),
                {"c": world.campaign_id},
            )
        ).all()
    assert ("door_objection.revert", 4) in [tuple(a) for a in actions]


def test_coarse_origin():
    from app.services.access.audit import coarse_client

    assert coarse_client("203.0.113.77") == "203.0.113.0/24"
    assert coarse_client("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert coarse_client("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert coarse_client(None) is None and coarse_client("testclient") is None


async def test_a_volunteers_do_not_knock_makes_a_form_flag_theirs(app, world, owner_engine):
    """A door the form flagged and a volunteer then marked do_not_knock keeps its flag on revert."""
    from tests.fixtures_field import assigned_turf, visit

    async with client_for(app) as c:
        _, _, doors = await assigned_turf(c, world, owner_engine)
    async with owner_engine.connect() as conn:
        door = (
            await conn.execute(
                text(
                    "SELECT a.id, a.numero, a.nom_voie FROM address a WHERE a.id = ANY(:ids) "
                    "AND a.suffixe IS NULL AND a.numero IS NOT NULL AND NOT EXISTS (SELECT 1 "
                    "FROM address b WHERE b.code_insee = a.code_insee AND b.nom_voie = a.nom_voie "
                    "AND b.numero = a.numero AND b.id <> a.id) ORDER BY a.id LIMIT 1"
                ),
                {"ids": doors},
            )
        ).one()
    async with client_for(app, "198.18.9.1") as c:
        r = await _form(c, world, kind="objection", address=f"{door.numero} {door.nom_voie}, Bruz")
        assert r.status_code == 200
        assert await _flags(owner_engine, world) == {door.id}
        r = await c.post(
            world.url("/visits"),
            json={"visits": [visit(door.id, "do_not_knock")]},
            headers=world.headers["volunteer"],
        )
        assert r.status_code == 200 and r.json()["created"] == 1, r.text
        r = await c.post(
            world.url("/door-objections/revert"),
            headers=world.headers["admin"],
            json={"origin": "198.18.9.0/24"},
        )
        assert r.json() == {"reverted": 1, "doors_unflagged": 0}
    assert await _flags(owner_engine, world) == {door.id}


# ---------------------------------------------------------------- languages
async def test_the_notice_and_its_pages_speak_the_readers_language(app, world):
    """French by default; English from the browser (Accept-Language) or the page's EN link
    (?lang=en, which wins); every text of the notice follows, none stays in the other language."""
    async with client_for(app) as c:
        fr = await c.get(f"/privacy/{world.campaign_id}")
        assert fr.status_code == 200 and '<html lang="fr">' in fr.text
        assert "Responsable du traitement" in fr.text and "Vos droits" in fr.text
        assert "Envoyez-moi une copie de mes données" in fr.text
        assert "Your rights" not in fr.text and "Send me a copy" not in fr.text
        en = await c.get(f"/privacy/{world.campaign_id}", headers=EN)
        assert '<html lang="en">' in en.text and "Controller:" in en.text
        assert "Your rights" in en.text and "Send me a copy of my data" in en.text
        assert "Responsable du traitement" not in en.text and "Vos droits" not in en.text
        asked = await c.get(
            f"/privacy/{world.campaign_id}?lang=en", headers={"Accept-Language": "fr"}
        )
        assert "Your rights" in asked.text
        # the form's answer, in the language the form was sent in
        done = await c.post(
            f"/privacy/{world.campaign_id}/objection?lang=en",
            data={"kind": "objection", "address": "1 chemin inconnu, 35170 Bruz"},
        )
        assert done.status_code == 200 and "Your request is recorded" in done.text


async def test_the_confirmation_mail_is_in_the_requesters_language(app, world):
    email = _email("lang")
    async with client_for(app) as c:
        await _supporter(c, world, email, n=2100)
        r = await c.post(
            f"/privacy/{world.campaign_id}/objection", data={"kind": "export", "email": email}
        )
        assert r.status_code == 200, r.text
        (message,) = mail_sink().wait_for(email)
        assert str(message["Subject"]).startswith("Confirmez votre demande")
        link = [u for u in mail_sink().links(email) if "#code=" in u][0]
        assert f"/privacy/{world.campaign_id}/confirm#code=" in link  # French: no ?lang
        page = await c.get(link.split("#", 1)[0].replace("http://127.0.0.1:8000", ""))
        assert "Confirmez votre demande" in page.text
