"""GDPR rights: erase and withdrawal leave the aggregates at once; export; objection; notice."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.factories import make_world
from tests.fixtures_supporters import doors_in_one_district, person


async def _placed(client, w, door_ids: list[int], start: int) -> list[str]:
    """Supporters placed by hand on these doors (via the review PATCH)."""
    ids = []
    for i, door in enumerate(door_ids):
        r = await client.post(
            w.url("/supporters"),
            headers=w.headers["admin"],
            json=person(start + i, address="somewhere we cannot place"),
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = await client.patch(
            w.url(f"/supporters/{sid}"), headers=w.headers["admin"], json={"address_id": door}
        )
        assert r.status_code == 200 and r.json()["geocode_level"] == "manual", r.text
        ids.append(sid)
    return ids


def _cell(body: dict, code: str) -> dict:
    return next(c for c in body["cells"] if c["key"] == code)


async def test_erase_and_withdrawal_change_district_aggregates(client, owner_engine, settings):
    w = await make_world(owner_engine, settings, k=3)
    code, doors = await doors_in_one_district(owner_engine, 4)
    ids = await _placed(client, w, doors, 300)
    agg = await client.get(w.url("/supporters/aggregates"), headers=w.headers["analyst"])
    assert agg.status_code == 200
    assert _cell(agg.json(), code) == {"key": code, "count": 4, "suppressed": False}
    # below k everywhere else: suppressed, and no exact total beside suppressed cells
    body = agg.json()
    assert body["published_total"] == 4 and "total" not in body
    assert all(c["count"] is None for c in body["cells"] if c["key"] != code)

    r = await client.delete(w.url(f"/supporters/{ids[0]}"), headers=w.headers["admin"])
    assert r.status_code == 200 and r.json()["erased"]
    agg = await client.get(w.url("/supporters/aggregates"), headers=w.headers["organiser"])
    assert _cell(agg.json(), code)["count"] == 3

    r = await client.post(
        w.url(f"/supporters/{ids[1]}/withdraw"),
        headers=w.headers["admin"],
        json={"channel": "letter"},
    )
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    agg = await client.get(w.url("/supporters/aggregates"), headers=w.headers["analyst"])
    assert _cell(agg.json(), code) == {"key": code, "count": None, "suppressed": True}
    assert agg.json()["published_total"] == 0

    async with owner_engine.connect() as conn:
        gone = (
            await conn.execute(
                text("SELECT count(*) FROM supporter WHERE campaign_id = :c AND id = :i"),
                {"c": w.campaign_id, "i": ids[0]},
            )
        ).scalar()
        proof = (
            await conn.execute(
                text(
                    "SELECT s.status, s.name_enc, s.email_enc, s.address_enc, s.point_enc, "
                    "s.address_id_enc, s.tile_id, s.bv_code, "
                    "s.withdrawn_at, "
                    "array_agg(c.withdrawn_at IS NOT NULL) AS w, "
                    "array_agg(c.withdrawal_channel) AS ch "
                    "FROM supporter s JOIN supporter_consent c ON c.campaign_id = s.campaign_id "
                    "AND c.supporter_id = s.id WHERE s.campaign_id = :c AND s.id = :i "
                    "GROUP BY s.status, s.name_enc, s.email_enc, s.address_enc, s.point_enc, "
                    "s.address_id_enc, s.tile_id, s.bv_code, "
                    "s.withdrawn_at"
                ),
                {"c": w.campaign_id, "i": ids[1]},
            )
        ).one()
        actions = (
            await conn.execute(
                text("SELECT array_agg(action) FROM audit_event WHERE campaign_id = :c"),
                {"c": w.campaign_id},
            )
        ).scalar()
    assert gone == 0
    assert proof.status == "withdrawn" and proof.withdrawn_at is not None
    assert proof.name_enc is None and proof.email_enc is None and proof.point_enc is None
    assert proof.address_id_enc is None and proof.tile_id is None and proof.bv_code is None
    assert all(proof.w) and set(proof.ch) == {"letter"}
    assert {"gdpr.erase", "gdpr.withdraw"} <= set(actions)
    # volunteers never see aggregates of supporters
    r = await client.get(w.url("/supporters/aggregates"), headers=w.headers["volunteer"])
    assert r.status_code == 403


async def test_supporter_counts_on_one_partition_only_tiles_when_chosen(
    client, owner_engine, settings
):
    # Districts and tiles overlap: a district's count minus the tiles shown inside it would give
    # a hidden tile (and the count of small tiles said how many there were). A campaign now
    # publishes one partition; the previous code answered both, with "suppressed_cells".
    w = await make_world(owner_engine, settings, k=2)
    _, doors = await doors_in_one_district(owner_engine, 2)
    await _placed(client, w, doors[:1], 400)
    r = await client.get(w.url("/supporters/aggregates?by=tile"), headers=w.headers["analyst"])
    assert r.status_code == 422 and r.json()["field"] == "by", r.text
    assert "district" in r.json()["detail"]
    r = await client.patch(
        f"/campaigns/{w.campaign_id}", json={"supporter_cells": "tile"}, headers=w.headers["admin"]
    )
    assert r.status_code == 200 and r.json()["supporter_cells"] == "tile", r.text
    r = await client.get(w.url("/supporters/aggregates"), headers=w.headers["organiser"])
    assert r.status_code == 422 and r.json()["field"] == "by"
    r = await client.get(w.url("/supporters/aggregates?by=tile"), headers=w.headers["analyst"])
    # a tile below k is not even listed (its presence would say that supporters live there)
    assert r.json()["cells"] == [] and "suppressed_cells" not in r.json()
    await _placed(client, w, doors[:1], 410)  # a second supporter at the same door
    r = await client.get(w.url("/supporters/aggregates?by=tile"), headers=w.headers["analyst"])
    cells = r.json()["cells"]
    assert r.json()["published_total"] == sum(c["count"] for c in cells) == 2
    assert all(c["key"].startswith("CRS3035RES200mN") for c in cells)
    # the ranking then has no supporter factor, and says why
    r = await client.get(w.url("/ranking"), headers=w.headers["analyst"])
    factor = next(f for f in r.json()["factors"] if f["name"] == "supporters")
    assert factor["status"] == "absent" and "supporter_cells" in factor["reason"]
    assert all(d["counts"]["supporters"] is None for d in r.json()["districts"])


async def test_export_everything_about_one_person(client, world, owner_engine):
    r = await client.post(
        world.url("/supporters"),
        headers=world.headers["admin"],
        json=person(500, address="1 rue des Acacias, 35170 Bruz"),
    )
    sid = r.json()["id"]
    r = await client.get(world.url(f"/supporters/{sid}/export"), headers=world.headers["admin"])
    assert r.status_code == 200
    body = r.json()
    assert body["supporter"]["email"] == "person500@example.test"
    assert body["supporter"]["address"] == "1 rue des Acacias, 35170 Bruz"
    assert {c["purpose"] for c in body["consents"]} == {"contact", "mapping"}
    assert body["consents"][0]["wording_version"] == "w-2026-01"
    assert any(e["action"] == "supporter.create" for e in body["processing_log"])
    r = await client.get(world.url(f"/supporters/{sid}/export"), headers=world.headers["analyst"])
    assert r.status_code == 403
    r = await client.get(
        world.url(f"/supporters/{uuid.uuid4()}/export"), headers=world.headers["admin"]
    )
    assert r.status_code == 404


async def test_rectify_and_objection_flag_the_door_without_identity(client, world, owner_engine):
    h = world.headers["admin"]
    r = await client.post(
        world.url("/supporters"), headers=h, json=person(600, address="1 rue des Acacas, Bruz")
    )
    sid = r.json()["id"]
    r = await client.patch(
        world.url(f"/supporters/{sid}"),
        headers=h,
        json={"address": "2 rue des Acacias, 35170 Bruz", "name": "New Name"},
    )
    assert r.status_code == 200 and r.json()["geocode_level"] == "housenumber"
    door = r.json()["address_id"]
    r = await client.get(world.url(f"/supporters/{sid}"), headers=h)
    assert r.json()["name"] == "New Name" and r.json()["address_id"] == door
    r = await client.post(world.url(f"/supporters/{sid}/objection"), headers=h)
    assert r.status_code == 200 and r.json()["door_flagged"]
    async with owner_engine.connect() as conn:
        flag = (
            await conn.execute(
                text("SELECT * FROM door_flag WHERE campaign_id = :c"), {"c": world.campaign_id}
            )
        ).one()
    # an address and a date, no identity (request_id: the public-form request that set a flag,
    # none here: the admin's flag is not revertible in bulk)
    assert flag.address_id == door and set(flag._mapping) == {
        "campaign_id",
        "address_id",
        "kind",
        "created_at",
        "request_id",
    }
    assert flag.request_id is None
    # the flag outlives the person's erasure
    await client.delete(world.url(f"/supporters/{sid}"), headers=h)
    async with owner_engine.connect() as conn:
        assert (
            await conn.execute(
                text("SELECT count(*) FROM door_flag WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalar() == 1


async def test_public_notice_qr_and_one_step_form(client, world, owner_engine):
    r = await client.put(
        world.url("/privacy-notice"),
        headers=world.headers["admin"],
        json={"controller": "Association Test (fictive)", "contact_email": "dpo@example.test"},
    )
    assert r.status_code == 200
    r = await client.get(f"/privacy/{world.campaign_id}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for must in (
        "Association Test (fictive)",
        "dpo@example.test",
        "CNIL",
        "consentement",
        "Responsable du traitement",
        "Combien de temps",
        "/objection",
    ):
        assert must in html
    r = await client.get(f"/privacy/{world.campaign_id}/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert "<svg" in r.text
    assert (await client.get(f"/privacy/{uuid.uuid4()}")).status_code == 404

    # objection by address: the door is flagged, nothing identifying is stored
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "objection", "address": "5 rue des acacias 35170 bruz"},
    )
    assert r.status_code == 200 and "ne sera plus proposée" in r.text
    # an address we cannot place waits, encrypted, for the admin
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "objection", "address": "8 rue Nationale, 59000 Lille"},
    )
    assert r.status_code == 200 and "à la main" in r.text
    # withdrawal by e-mail, matched by its keyed hash whatever the case and spacing; it waits
    # for the person to confirm from the link sent to the held address (tests/test_privacy_form.py)
    sid = (
        await client.post(
            world.url("/supporters"), headers=world.headers["admin"], json=person(700)
        )
    ).json()["id"]
    unknown = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "withdrawal", "email": "nobody@example.test"},
    )
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "withdrawal", "email": " PERSON700@example.test"},
    )
    assert r.status_code == unknown.status_code == 200 and r.text == unknown.text
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "withdrawal", "email": "not an email"},
    )
    assert r.status_code == 422 and r.json()["field"] == "email"
    async with owner_engine.connect() as conn:
        status = (
            await conn.execute(
                text("SELECT status FROM supporter WHERE campaign_id = :c AND id = :i"),
                {"c": world.campaign_id, "i": sid},
            )
        ).scalar()
        flags = (
            await conn.execute(
                text("SELECT count(*) FROM door_flag WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalar()
        reqs = (
            await conn.execute(
                text(
                    "SELECT kind, status, outcome, address_enc IS NOT NULL AS enc "
                    "FROM privacy_request "
                    "WHERE campaign_id = :c ORDER BY received_at, outcome"
                ),
                {"c": world.campaign_id},
            )
        ).all()
    assert status == "active" and flags == 1
    assert sorted((r.kind, r.status, r.outcome, r.enc) for r in reqs) == [
        ("objection", "done", "door_flagged", False),
        ("objection", "pending", "address_none", True),
        ("withdrawal", "done", "no_match", False),
        ("withdrawal", "unconfirmed", "link_sent", False),
    ]


async def test_withdrawing_mapping_only_leaves_the_counts_but_keeps_the_contact(
    client, owner_engine, settings
):
    w = await make_world(owner_engine, settings, k=2)
    code, doors = await doors_in_one_district(owner_engine, 2)
    ids = await _placed(client, w, doors, 800)
    agg = await client.get(w.url("/supporters/aggregates"), headers=w.headers["analyst"])
    assert _cell(agg.json(), code)["count"] == 2
    r = await client.post(
        w.url(f"/supporters/{ids[0]}/withdraw"),
        headers=w.headers["admin"],
        json={"purposes": ["mapping"], "channel": "phone"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"id": ids[0], "status": "active", "purposes_left": ["contact"]}
    agg = await client.get(w.url("/supporters/aggregates"), headers=w.headers["analyst"])
    assert _cell(agg.json(), code) == {"key": code, "count": None, "suppressed": True}
    r = await client.get(w.url(f"/supporters/{ids[0]}"), headers=w.headers["admin"])
    assert r.json()["email"] == "person800@example.test" and r.json()["lon"] is None
    # placing them again is refused: they no longer agree to be mapped
    r = await client.patch(
        w.url(f"/supporters/{ids[0]}"), headers=w.headers["admin"], json={"address_id": doors[0]}
    )
    assert r.status_code == 422 and r.json()["field"] == "address_id"
    r = await client.post(
        w.url(f"/supporters/{ids[0]}/withdraw"),
        headers=w.headers["admin"],
        json={"purposes": ["newsletter"]},
    )
    assert r.status_code == 422 and r.json()["field"] == "purposes"
    # the refusal says which consent is missing, and which stand
    assert "aucun consentement en cours pour « newsletter »" in r.json()["detail"]
    assert "(en cours : contact)" in r.json()["detail"]
    listed = await client.get(w.url("/supporters?level=manual"), headers=w.headers["admin"])
    assert [i["id"] for i in listed.json()["items"]] == [ids[1]]


async def test_admin_resolves_an_objection_the_form_could_not_place(client, world, owner_engine):
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "objection", "address": "4 rue des Acacas, Bruz 35170"},
    )
    assert r.status_code == 200
    r = await client.post(
        f"/privacy/{world.campaign_id}/objection",
        data={"kind": "objection", "address": "Le Bourg, 35170 Bruz"},
    )
    assert "à la main" in r.text
    r = await client.get(world.url("/privacy-requests"), headers=world.headers["admin"])
    (item,) = r.json()["items"]
    assert item["address"] == "Le Bourg, 35170 Bruz" and item["status"] == "pending"
    async with owner_engine.connect() as conn:
        door = (
            await conn.execute(
                text("SELECT id FROM address WHERE code_insee = '35047' ORDER BY id LIMIT 1")
            )
        ).scalar()
    r = await client.post(
        world.url(f"/privacy-requests/{item['id']}/resolve"),
        headers=world.headers["admin"],
        json={"address_id": door},
    )
    assert r.status_code == 200 and r.json()["outcome"] == "door_flagged_by_admin"
    async with owner_engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT address_enc FROM privacy_request WHERE campaign_id = :c AND id = :i"),
                {"c": world.campaign_id, "i": uuid.UUID(item["id"])},
            )
        ).scalar()
        flags = (
            await conn.execute(
                text("SELECT count(*) FROM door_flag WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalar()
    assert left is None and flags == 2
    r = await client.get(world.url("/privacy-requests"), headers=world.headers["organiser"])
    assert r.status_code == 403


async def test_erasure_leaves_the_counts_within_the_same_transaction(
    client, owner_engine, settings
):
    """The counts are computed live: the erasing transaction itself already sees the change."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from app.context import CampaignContext, Principal
    from app.db import set_tenant
    from app.services.people import gdpr
    from app.services.people.supporters.aggregates import supporter_counts

    w = await make_world(owner_engine, settings, k=2)
    code, doors = await doors_in_one_district(owner_engine, 3)
    ids = await _placed(client, w, doors, 900)
    engine = create_async_engine(settings.database_url)  # the service's role: RLS applies
    async with AsyncSession(engine) as session, session.begin():
        await set_tenant(session, w.campaign_id, w.users["admin"])
        ctx = CampaignContext(
            campaign_id=w.campaign_id,
            role="admin",
            principal=Principal(user_id=w.users["admin"]),
            session=session,
            k_threshold=2,
            election_date=None,
            request_id="test",
            client=None,
            settings=settings,
        )
        before = (await supporter_counts(session, w.campaign_id, k=2)).counts()[code]
        await gdpr.erase(ctx, uuid.UUID(ids[0]))
        middle = (await supporter_counts(session, w.campaign_id, k=2)).counts()[code]
        await gdpr.withdraw(ctx, uuid.UUID(ids[1]), channel="test")
        after = (await supporter_counts(session, w.campaign_id, k=2)).counts()[code]
    await engine.dispose()
    assert (before, middle, after) == (3, 2, None)


async def test_public_form_is_throttled_per_client_across_workers(settings):
    """The count lives in PostgreSQL: two app instances (workers, servers) share it."""
    from datetime import UTC, datetime, timedelta

    import pytest

    from app.db import Database
    from app.errors import TooManyRequests
    from app.services.people.privacy import FORM_LIMIT, throttle

    one, two = Database(settings), Database(settings)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        for i in range(FORM_LIMIT):
            await throttle(one if i % 2 else two, "203.0.113.9", now=t0 + timedelta(seconds=i))
        with pytest.raises(TooManyRequests):
            await throttle(one, "203.0.113.9", now=t0 + timedelta(seconds=FORM_LIMIT))
        with pytest.raises(TooManyRequests):
            await throttle(two, "203.0.113.9", now=t0 + timedelta(seconds=FORM_LIMIT))
        # another client is not affected; a minute later it passes again
        await throttle(two, "203.0.113.10", now=t0 + timedelta(seconds=FORM_LIMIT))
        await throttle(one, "203.0.113.9", now=t0 + timedelta(seconds=61 + FORM_LIMIT))
    finally:
        await one.dispose()
        await two.dispose()


async def test_objection_of_an_unplaced_supporter_says_what_to_do(client, world):
    """A supporter not placed on a door yet: 409 saying to pick the door first (in French by
    default; this refusal path once called a variable named `_` instead of the translation)."""
    h = world.headers["admin"]
    r = await client.post(world.url("/supporters"), headers=h, json=person(610))
    assert r.status_code == 201, r.text
    r = await client.post(world.url(f"/supporters/{r.json()['id']}/objection"), headers=h)
    assert r.status_code == 409 and r.json()["field"] == "address_id"
    assert r.json()["detail"].startswith("Ce sympathisant n'est pas encore placé sur une porte")
