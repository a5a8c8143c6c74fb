"""Supporters: consent required (API and SQL), encryption at rest, duplicates, CSV import."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.services.access.crypto import Cipher, DecryptionFailed, aad
from tests.conftest import make_settings
from tests.fixtures_supporters import CONSENT, person

EN = {"Accept-Language": "en"}


async def _count(owner_engine, cid) -> int:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM supporter WHERE campaign_id = :c"), {"c": cid}
            )
        ).scalar()


async def test_api_refuses_a_supporter_without_consent(client, world, owner_engine):
    h = world.headers["admin"]
    r = await client.post(world.url("/supporters"), json={"name": "No Consent"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "consent"
    r = await client.post(
        world.url("/supporters"),
        headers=h,
        json=person(1, consent={**CONSENT, "given_by_subject": False}),
    )
    assert r.status_code == 422 and r.json()["field"] == "consent.given_by_subject"
    r = await client.post(
        world.url("/supporters"), headers=h, json=person(2, consent={**CONSENT, "purposes": []})
    )
    assert r.status_code == 422 and r.json()["field"] == "consent.purposes"
    assert await _count(owner_engine, world.campaign_id) == 0
    # other roles may not even try
    r = await client.post(
        world.url("/supporters"), json=person(3), headers=world.headers["organiser"]
    )
    assert r.status_code == 403


async def test_database_refuses_a_supporter_without_consent(owner_engine, world):
    sid = uuid.uuid4()
    with pytest.raises(DBAPIError, match="no consent given by the person"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
                {"c": world.campaign_id, "i": sid},
            )
    # with its consent in the same transaction (check deferred to commit) it is accepted
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
        await conn.execute(
            text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
            {"c": world.campaign_id, "i": sid},
        )
        await conn.execute(
            text(
                "INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at, "
                "given_by_subject, channel, wording_version, notice_version, collected_by) "
                "VALUES (:c, :i, 'contact', now(), true, 'form', 'w1', 'n1', 'test')"
            ),
            {"c": world.campaign_id, "i": sid},
        )
    # ... but not without: deferred to commit, the commit fails
    with pytest.raises(DBAPIError, match="no consent given by the person"):
        async with owner_engine.begin() as conn:
            await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
            await conn.execute(
                text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
                {"c": world.campaign_id, "i": uuid.uuid4()},
            )
    # its last consent cannot be removed
    with pytest.raises(DBAPIError, match="no consent given by the person"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM supporter_consent WHERE campaign_id = :c AND supporter_id = :i"),
                {"c": world.campaign_id, "i": sid},
            )
    with pytest.raises(DBAPIError, match="given_by_subject"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE supporter_consent SET given_by_subject = false "
                    "WHERE campaign_id = :c AND supporter_id = :i"
                ),
                {"c": world.campaign_id, "i": sid},
            )


async def test_personal_columns_are_ciphertext(client, world, owner_engine, settings):
    body = person(7, address="12 rue Maurice Ravel, 35170 Bruz")
    r = await client.post(world.url("/supporters"), json=body, headers=world.headers["admin"])
    assert r.status_code == 201, r.text
    sid = uuid.UUID(r.json()["id"])
    assert r.json()["geocode_level"] == "housenumber"
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT key_id, name_enc, email_enc, phone_enc, address_enc, notes_enc, "
                    "email_hmac, point_enc IS NOT NULL AS placed FROM supporter "
                    "WHERE campaign_id = :c AND id = :i"
                ),
                {"c": world.campaign_id, "i": sid},
            )
        ).one()
        dump = (
            await conn.execute(
                text("SELECT s::text FROM supporter s WHERE campaign_id = :c AND id = :i"),
                {"c": world.campaign_id, "i": sid},
            )
        ).scalar()
    assert row.key_id == "test1" and row.placed
    for plain in ("Test Person 7", "person7@example.test", "Ravel", "market", "+33600000007"):
        assert plain not in dump
        for blob in row[1:6]:
            assert plain.encode() not in bytes(blob)
    cipher = Cipher.from_settings(settings)
    got = cipher.decrypt(row.email_enc, key_id=row.key_id, ad=aad(world.campaign_id, sid, "email"))
    assert got == "person7@example.test"
    assert (
        cipher.decrypt(row.phone_enc, key_id="test1", ad=aad(world.campaign_id, sid, "phone"))
        == "+33600000007"
    )
    other = Cipher({"test1": b"x" * 32}, "test1")
    with pytest.raises(DecryptionFailed):
        other.decrypt(row.email_enc, key_id="test1", ad=aad(world.campaign_id, sid, "email"))
    # a ciphertext moved to another column does not open either
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(row.email_enc, key_id="test1", ad=aad(world.campaign_id, sid, "name"))
    # the admin reads it back through the API, and that is audited
    r = await client.get(world.url(f"/supporters/{sid}"), headers=world.headers["admin"])
    assert r.json()["email"] == "person7@example.test"
    async with owner_engine.connect() as conn:
        assert (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'supporter.read'"
                ),
                {"c": world.campaign_id},
            )
        ).scalar() == 1
    r = await client.get(world.url(f"/supporters/{sid}"), headers=world.headers["organiser"])
    assert r.status_code == 403


async def test_duplicates_found_across_email_and_phone_variants(client, world):
    h = world.headers["admin"]
    r = await client.post(
        world.url("/supporters"),
        headers=h,
        json=person(10, email="Jean.Dupont@Example.ORG", phone=None),
    )
    assert r.status_code == 201
    first = r.json()["id"]
    for variant in (
        "  jean.dupont@example.org ",
        "JEAN.DUPONT@EXAMPLE.ORG",
        "jean.dupont @example.org",
    ):
        r = await client.post(
            world.url("/supporters"), headers=h, json=person(11, email=variant, phone=None)
        )
        assert r.status_code == 409, (variant, r.text)
        assert r.json()["duplicate_of"] == first and r.json()["field"] == "email"
    r = await client.post(
        world.url("/supporters"), headers=h, json=person(12, email=None, phone="06 12 34 56 78")
    )
    assert r.status_code == 201
    r = await client.post(
        world.url("/supporters"), headers=h, json=person(13, email=None, phone="+33 6.12.34.56.78")
    )
    assert r.status_code == 409 and r.json()["field"] == "phone"


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "two@@example.org"),
        ("phone", "12345"),
        ("phone", "06 12 34 56 7x"),
        ("phone", "+33 6 12 34 56 78 90"),
    ],
)
async def test_malformed_contacts_are_refused(client, world, field, value):
    r = await client.post(
        world.url("/supporters"), headers=world.headers["admin"], json=person(20, **{field: value})
    )
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def _csv(rows: list[str]) -> bytes:
    return ("Nom;Courriel;Tel;Adresse;Accord le;Finalites;Commentaire\n" + "\n".join(rows)).encode()


MAPPING = json.dumps(
    {
        "columns": {
            "Nom": "name",
            "Courriel": "email",
            "Tel": "phone",
            "Adresse": "address",
            "Accord le": "consent_given_at",
            "Finalites": "consent_purposes",
        },
        "defaults": {
            "consent_channel": "event",
            "consent_wording_version": "w1",
            "consent_notice_version": "n1",
            "consent_collected_by": "Fête de quartier",
            "consent_given_by_subject": True,
        },
    }
)
ROWS = [
    "Alice Test;alice@example.test;;3 rue des Acacias, 35170 Bruz;2026-01-05;contact|mapping;x",
    "Bob Test;bob@example;;;2026-01-05;contact;",  # line 3: bad e-mail
    "Carol Test;carol@example.test;0612;;2026-01-05;contact;",  # line 4: bad phone
    "Dan Test;dan@example.test;;;;;",  # line 5: no consent
    "Eve Test;ALICE@example.test ;;;2026-01-05;contact;",  # line 6: duplicate of 2
    "Fay Test;fay@example.test;;10 rue de Rivoli, 75001 Paris;2026-01-05;mapping;",
]


async def test_import_is_all_or_nothing_with_a_report(client, world, owner_engine):
    h = world.headers["admin"]
    files = {"file": ("s.csv", _csv(ROWS), "text/csv")}
    r = await client.post(
        world.url("/supporters/import"), headers=h, files=files, data={"mapping": MAPPING}
    )
    assert r.status_code == 422, r.text
    rep = r.json()["report"]
    assert [x["row"] for x in rep["rejected"]] == [3, 4, 5, 6]
    reasons = {x["row"]: (x["field"], x["reason"]) for x in rep["rejected"]}
    assert reasons[3][0] == "email" and reasons[4][0] == "phone"
    assert reasons[5][0] == "consent" and "consent" in reasons[5][1]
    assert "doublon" in reasons[6][1] and "ligne 2" in reasons[6][1]
    assert rep["ignored_columns"] == ["Commentaire"]
    assert await _count(owner_engine, world.campaign_id) == 0

    r = await client.post(
        world.url("/supporters/import"),
        headers=h,
        files=files,
        data={"mapping": MAPPING, "valid_rows_only": "true"},
    )
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["loaded"] == 2 and rep["rejected_count"] == 4
    assert rep["geocoded"] == {"housenumber": 1, "none": 1} and rep["needs_review"] == 1
    assert await _count(owner_engine, world.campaign_id) == 2
    # the address outside the loaded doors waits in the review list with a clear reason
    r = await client.get(world.url("/supporters/review"), headers=h)
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["geocode_level"] == "none"
    assert "département 75" in items[0]["geocode_note"]
    # importing the same file again: everyone valid is now a duplicate of a stored supporter
    r = await client.post(
        world.url("/supporters/import"),
        headers=h,
        files=files,
        data={"mapping": MAPPING, "valid_rows_only": "true"},
    )
    assert r.json()["loaded"] == 0
    assert any("que le sympathisant" in x["reason"] for x in r.json()["rejected"])


async def test_import_bad_mapping_and_huge_files(client, world):
    h = world.headers["admin"]
    files = {"file": ("s.csv", _csv(ROWS[:1]), "text/csv")}
    bad = json.dumps({"columns": {"Nom": "surname"}})
    r = await client.post(
        world.url("/supporters/import"), headers=h, files=files, data={"mapping": bad}
    )
    assert r.status_code == 422 and r.json()["field"] == "mapping.columns"
    assert "surname" in r.json()["detail"]
    bad = json.dumps({"columns": {"Prénom": "name"}})
    r = await client.post(
        world.url("/supporters/import"), headers=h, files=files, data={"mapping": bad}
    )
    assert r.status_code == 422 and "absente de l'en-tête du fichier" in r.json()["detail"]
    # one million rows: refused up front with the limit and what to do (read in English)
    big = b"name\n" + b"x\n" * 1_000_000
    r = await client.post(
        world.url("/supporters/import"),
        headers={**h, **EN},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert r.status_code == 413
    assert "50,000 rows" in r.json()["detail"] and "Split" in r.json()["detail"]
    assert r.json()["max_rows"] == 50_000


async def test_rotation_keeps_every_row_readable(make_db):
    import httpx
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.main import create_app
    from app.services.access.crypto import rotate
    from tests.factories import make_world

    urls = make_db("rot")
    old = make_settings(urls)
    engine = create_async_engine(urls.owner)
    w = await make_world(engine, old)
    app = create_app(old)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for i in range(7):
            r = await c.post(w.url("/supporters"), json=person(100 + i), headers=w.headers["admin"])
            assert r.status_code == 201
    await app.state.db.dispose()
    # an objection whose typed address is kept encrypted until an admin resolves it
    req_id = uuid.uuid4()
    typed = "12 rue de la Paix, 35170 Bruz"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO privacy_request (campaign_id, id, kind, status, outcome, key_id, "
                "address_enc) VALUES (:c, :i, 'objection', 'pending', 'unplaced', :k, :a)"
            ),
            {
                "c": w.campaign_id,
                "i": req_id,
                "k": old.data_key_id,
                "a": Cipher.from_settings(old).encrypt(
                    typed, ad=aad(w.campaign_id, req_id, "address")
                ),
            },
        )
    new_key = base64.b64encode(b"n" * 32).decode()
    keys = {**old.data_key_map, "test2": new_key}
    new = make_settings(urls, data_keys=json.dumps(keys), data_key_id="test2")
    done = await rotate(engine, new, batch=3)
    assert done == 7 + 1
    async with engine.connect() as conn:
        req = (await conn.execute(text("SELECT key_id, address_enc FROM privacy_request"))).one()
    assert req.key_id == "test2"
    assert (
        Cipher.from_settings(new).decrypt(
            req.address_enc, key_id="test2", ad=aad(w.campaign_id, req_id, "address")
        )
        == typed
    )
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT campaign_id, id, key_id, email_enc FROM supporter"))
        ).all()
    cipher = Cipher.from_settings(new)
    assert {r.key_id for r in rows} == {"test2"}
    emails = {
        cipher.decrypt(r.email_enc, key_id=r.key_id, ad=aad(r.campaign_id, r.id, "email"))
        for r in rows
    }
    assert emails == {f"person{100 + i}@example.test" for i in range(7)}
    with pytest.raises(DecryptionFailed):  # the old key no longer opens them
        Cipher.from_settings(old).decrypt(
            rows[0].email_enc, key_id="test1", ad=aad(rows[0].campaign_id, rows[0].id, "email")
        )
    assert await rotate(engine, new) == 0  # idempotent
    await engine.dispose()


async def test_french_dates_and_labels_are_read(client, world, owner_engine):
    """A French spreadsheet: jj/mm/aaaa dates (Paris time), purposes and channels in words."""
    h = world.headers["admin"]
    rows = [
        "Gil Test;gil@example.test;;;10/01/2026;contact|cartographie;",
        "Hana Test;hana@example.test;;;10/01/2026 18:30;bénévolat, Lettre d'info;",
    ]
    mapping = json.loads(MAPPING)
    mapping["defaults"]["consent_channel"] = "Porte-à-porte"
    r = await client.post(
        world.url("/supporters/import"),
        headers=h,
        files={"file": ("s.csv", _csv(rows), "text/csv")},
        data={"mapping": json.dumps(mapping)},
    )
    assert r.status_code == 200, r.text
    async with owner_engine.connect() as conn:
        got = (
            await conn.execute(
                text(
                    "SELECT given_at AT TIME ZONE 'Europe/Paris' AS local, purpose, channel "
                    "FROM supporter_consent WHERE campaign_id = :c ORDER BY given_at, purpose"
                ),
                {"c": world.campaign_id},
            )
        ).all()
    assert [(str(g.local), g.purpose, g.channel) for g in got] == [
        ("2026-01-10 00:00:00", "contact", "door"),
        ("2026-01-10 00:00:00", "mapping", "door"),
        ("2026-01-10 18:30:00", "newsletter", "door"),
        ("2026-01-10 18:30:00", "volunteering", "door"),
    ]
    # An American date is not silently read as French: 13th month is refused, naming the field.
    bad = await client.post(
        world.url("/supporters"),
        headers=h,
        json=person(30, consent={**CONSENT, "given_at": "01/13/2026"}),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "consent.given_at"
    assert "jj/mm/aaaa" in bad.json()["detail"]


async def test_review_list_leaves_out_who_refused_mapping_and_says_so(client, world):
    """A supporter who did not agree to 'mapping' is not offered for placing
    (no suggested door the server would then refuse); the list says how many it leaves out and
    why, and so does the refusal to place them by hand."""
    h = world.headers["admin"]
    street_only = "rue des Acacias, 35170 Bruz"  # a known street, no number: waits for review
    mapped = person(40, address=street_only)
    refused = person(41, address=street_only, consent={**CONSENT, "purposes": ["contact"]})
    ids = {}
    for key, body in (("mapped", mapped), ("refused", refused)):
        r = await client.post(world.url("/supporters"), json=body, headers=h)
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    r = await client.get(world.url("/supporters/review"), headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    listed = {i["id"] for i in body["items"]}
    assert ids["mapped"] in listed
    assert ids["refused"] not in listed
    assert body["left_out"] == {"no_mapping_consent": 1}
    assert "cartographie" in body["note"] and "1 " in body["note"]
    en = (await client.get(world.url("/supporters/review"), headers={**h, **EN})).json()
    assert "did not agree to 'mapping'" in en["note"]
    # placing them by hand is refused, naming the purpose that is missing
    door = (await client.get(world.url("/supporters/review"), headers=h)).json()["items"][0]
    assert door["street_doors"], "the suggestion offers the street's doors"
    r = await client.patch(
        world.url(f"/supporters/{ids['refused']}"),
        json={"address_id": door["street_doors"][0]["id"]},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["field"] == "address_id"
    assert "« mapping »" in r.json()["detail"]


async def test_empty_review_list_says_why(client, world):
    h = world.headers["admin"]
    body = (await client.get(world.url("/supporters/review"), headers=h)).json()
    assert body["items"] == [] and body["left_out"] == {"no_mapping_consent": 0}
    assert body["note"].startswith("Aucun sympathisant")
