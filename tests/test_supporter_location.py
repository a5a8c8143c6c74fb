"""A supporter's exact door is encrypted at rest; only coarse cells (tile, districts) stay in clear.

A dump of the ``supporter`` table (the owner's role, RLS bypassed: what a backup holds) must not
list any supporter's door id or point; the aggregates and the ranking still count supporters per
district and tile; rotation re-encrypts the door; the migration that converts existing rows
refuses to run without the keys. Every person here is SYNTHETIC.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.services.access.crypto import Cipher, aad
from tests.conftest import make_settings
from tests.factories import make_world
from tests.fixtures_supporters import doors_in_one_district, person


def _numbers(value) -> list[float]:
    """Every number inside a JSON value (nested lists and objects included)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return []
    return []


async def _door(owner_engine, door_id: int):
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT id, lon, lat FROM address WHERE id = :i"), {"i": door_id}
            )
        ).one()


async def test_a_dump_of_the_supporter_table_shows_no_door(client, world, owner_engine):
    h = world.headers["admin"]
    _, (door_id,) = await doors_in_one_district(owner_engine, 1)
    placed = (
        await client.post(world.url("/supporters"), headers=h, json=person(1201, address="nowhere"))
    ).json()["id"]
    r = await client.patch(
        world.url(f"/supporters/{placed}"), headers=h, json={"address_id": door_id}
    )
    assert r.status_code == 200 and r.json()["address_id"] == door_id, r.text
    geocoded = await client.post(
        world.url("/supporters"),
        headers=h,
        json=person(1202, address="12 rue Maurice Ravel, 35170 Bruz"),
    )
    assert geocoded.json()["geocode_level"] == "housenumber", geocoded.text
    geocoded_id = geocoded.json()["id"]
    doors = [await _door(owner_engine, door_id)]
    got = (await client.get(world.url(f"/supporters/{geocoded_id}"), headers=h)).json()
    doors.append(await _door(owner_engine, got["address_id"]))

    async with owner_engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT column_name, udt_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = 'supporter'"
                )
            )
        ).all()
        rows = (
            await conn.execute(
                text("SELECT to_jsonb(s) FROM supporter s WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalars()
        rows = list(rows)
        raw = (
            await conn.execute(
                text("SELECT s::text FROM supporter s WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalars()
        raw = list(raw)
    # no column can hold a door or a point in clear
    assert not [c for c in columns if c.udt_name in ("geometry", "geography")], columns
    assert "address_id" not in {c.column_name for c in columns}
    assert len(rows) == 2
    for row in rows:
        clear = {k: v for k, v in row.items() if not (isinstance(v, str) and v.startswith("\\x"))}
        for n in _numbers(clear):
            for d in doors:
                assert n != d.id, f"door id {d.id} in clear: {row}"
                assert not math.isclose(n, d.lon, abs_tol=1e-6), row
                assert not math.isclose(n, d.lat, abs_tol=1e-6), row
        # the ciphertexts do not contain the door either
        for blob in (v for v in row.values() if isinstance(v, str) and v.startswith("\\x")):
            data = bytes.fromhex(blob[2:])
            for d in doors:
                for plain in (str(d.id), repr(d.lon), repr(d.lat)):
                    assert plain.encode() not in data
    for line in raw:
        for d in doors:
            assert repr(d.lon) not in line and repr(d.lat) not in line
    # the coarse cells the aggregates need are there, in clear
    assert all(r["tile_id"].startswith("CRS3035RES200mN") for r in rows)

    # the admin still reads the exact door (decrypted in the service), in every view that needs it
    one = (await client.get(world.url(f"/supporters/{placed}"), headers=h)).json()
    assert one["address_id"] == door_id
    assert one["lon"] == doors[0].lon and one["lat"] == doors[0].lat
    listed = (await client.get(world.url("/supporters?level=manual"), headers=h)).json()
    assert [i["address_id"] for i in listed["items"]] == [door_id]
    export = (await client.get(world.url(f"/supporters/{placed}/export"), headers=h)).json()
    assert export["supporter"]["address_id"] == door_id
    assert export["supporter"]["lon"] == doors[0].lon
    r = await client.post(world.url(f"/supporters/{placed}/objection"), headers=h)
    assert r.status_code == 200 and r.json()["address_id"] == door_id


# ---------------------------------------------------------------- aggregates on a small world
DOORS = [  # lon, lat: two doors west, two doors east (SYNTHETIC points in Antony)
    (2.2950, 48.7530),
    (2.2951, 48.7531),
    (2.3050, 48.7530),
    (2.3051, 48.7531),
]


async def _small_world(owner_url: str) -> list[int]:
    """Four doors, two polling stations (west, east) and one IRIS over both (SYNTHETIC)."""
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            ids = []
            for i, (lon, lat) in enumerate(DOORS):
                ids.append(
                    (
                        await conn.execute(
                            text(
                                "INSERT INTO address (numero, nom_voie, code_insee, lon, lat, "
                                "source, source_file) VALUES (:n, 'Rue Synthétique', '92002', "
                                ":lon, :lat, 'synthetic', 'test') RETURNING id"
                            ),
                            {"n": i + 1, "lon": lon, "lat": lat},
                        )
                    ).scalar_one()
                )
            for code, kind, box in (
                ("T_0001", "bureau_de_vote", (2.29, 48.75, 2.30, 48.76)),
                ("T_0002", "bureau_de_vote", (2.30, 48.75, 2.31, 48.76)),
                ("T_IRIS", "iris", (2.29, 48.75, 2.31, 48.76)),
            ):
                await _district(conn, code, kind, box)
    finally:
        await engine.dispose()
    return ids


async def _district(conn, code: str, kind: str, box: tuple) -> None:
    await conn.execute(
        text(
            "INSERT INTO district (code, kind, name, commune_code, geom, geom_3035, source_file) "
            "SELECT :code, :kind, :code, '92002', g, ST_Transform(g, 3035), 'test' "
            "FROM (SELECT ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)) AS g) x"
        ),
        {"code": code, "kind": kind, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]},
    )


def _counts(body: dict) -> dict:
    return {c["key"]: c["count"] for c in body["cells"]}


async def test_aggregates_and_ranking_count_by_cells_and_follow_new_districts(make_db):
    urls = make_db("cells")
    doors = await _small_world(urls.owner)
    settings = make_settings(urls)
    engine = create_async_engine(urls.owner)
    w = await make_world(engine, settings, k=2)
    from app.main import create_app

    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            h = w.headers["admin"]
            for i, door in enumerate(doors):
                sid = (
                    await c.post(
                        w.url("/supporters"), headers=h, json=person(1300 + i, address="x")
                    )
                ).json()["id"]
                r = await c.patch(w.url(f"/supporters/{sid}"), headers=h, json={"address_id": door})
                assert r.status_code == 200, r.text
            a = w.headers["analyst"]
            # each supporter counts in one district: the smallest code covering its point (the
            # polling station here); the IRIS over both is listed, and hidden (0 < k)
            by_bv = (await c.get(w.url("/supporters/aggregates"), headers=a)).json()
            assert _counts(by_bv) == {"T_0001": 2, "T_0002": 2, "T_IRIS": None}
            by_iris = (
                await c.get(w.url("/supporters/aggregates?district_kind=iris"), headers=a)
            ).json()
            assert _counts(by_iris) == {"T_IRIS": None}
            ranked = (await c.get(w.url("/ranking"), headers=a)).json()
            sup = {
                d["code"]: d["values"]["supporters"]
                for d in ranked["districts"]
                if d["code"] in ("T_0001", "T_0002")
            }
            assert sup == {"T_0001": 2, "T_0002": 2}

            # the contours change (a new import): the stored cells follow at the next read
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM district WHERE code IN ('T_0001', 'T_0002')"))
                await _district(conn, "T_0000", "bureau_de_vote", (2.29, 48.75, 2.31, 48.76))
            by_bv = (await c.get(w.url("/supporters/aggregates"), headers=a)).json()
            assert _counts(by_bv) == {"T_0000": 4, "T_IRIS": None}
            ranked = (await c.get(w.url("/ranking"), headers=a)).json()
            assert {
                d["code"]: d["values"]["supporters"]
                for d in ranked["districts"]
                if d["code"].startswith("T_0")
            } == {"T_0000": 4}

            # a campaign that publishes per 200 m tile: counted by the clear tile id
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE campaign SET supporter_cells = 'tile' WHERE id = :c"),
                    {"c": w.campaign_id},
                )
                tiles = (
                    await conn.execute(
                        text(
                            "SELECT 'CRS3035RES200mN' || (floor(ST_Y(p) / 200) * 200)::bigint "
                            "|| 'E' || (floor(ST_X(p) / 200) * 200)::bigint AS tile, count(*) AS n "
                            "FROM (SELECT ST_Transform(geom, 3035) AS p FROM address) x "
                            "GROUP BY 1"
                        )
                    )
                ).all()
            by_tile = (await c.get(w.url("/supporters/aggregates?by=tile"), headers=a)).json()
            assert _counts(by_tile) == {t.tile: t.n for t in tiles if t.n >= 2}
            assert sum(t.n for t in tiles) == 4
    finally:
        await app.state.db.dispose()
        await engine.dispose()


# ---------------------------------------------------------------- rotation
async def test_rotation_re_encrypts_the_door(make_db):
    from app.main import create_app
    from app.services.access.crypto import rotate

    urls = make_db("rotdoor")
    door_id = (await _small_world(urls.owner))[0]
    lon, lat = DOORS[0]
    old = make_settings(urls)
    engine = create_async_engine(urls.owner)
    w = await make_world(engine, old)
    app = create_app(old)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            h = w.headers["admin"]
            r = await c.post(w.url("/supporters"), headers=h, json=person(1400, address="x"))
            sid = uuid.UUID(r.json()["id"])
            r = await c.patch(w.url(f"/supporters/{sid}"), headers=h, json={"address_id": door_id})
            assert r.status_code == 200, r.text
    finally:
        await app.state.db.dispose()
    new_key = base64.b64encode(b"r" * 32).decode()
    new = make_settings(
        urls, data_keys=json.dumps({**old.data_key_map, "test2": new_key}), data_key_id="test2"
    )
    assert await rotate(engine, new) == 1
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT key_id, address_id_enc, point_enc FROM supporter WHERE id = :i"),
                {"i": sid},
            )
        ).one()
    assert row.key_id == "test2"
    cipher = Cipher.from_settings(new)
    assert cipher.decrypt(
        row.address_id_enc, key_id="test2", ad=aad(w.campaign_id, sid, "address_id")
    ) == str(door_id)
    assert cipher.decrypt(row.point_enc, key_id="test2", ad=aad(w.campaign_id, sid, "point")) == (
        f"{lon!r} {lat!r}"
    )
    # the service reads it back with only the new key
    only_new = make_settings(urls, data_keys=json.dumps({"test2": new_key}), data_key_id="test2")
    app = create_app(only_new)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            got = await c.get(w.url(f"/supporters/{sid}"), headers=w.headers["admin"])
            assert got.json()["address_id"] == door_id
            assert (got.json()["lon"], got.json()["lat"]) == (lon, lat)
    finally:
        await app.state.db.dispose()
        await engine.dispose()


# ---------------------------------------------------------------- the migration
BEFORE = "0029_legal_basis"
HEAD_REVISION = "0013_supporter_location_at_rest"


async def test_migration_encrypts_existing_doors_or_refuses_without_keys(pg_cluster, monkeypatch):
    from app.migrate import downgrade, upgrade
    from tests.conftest import TEMPLATE
    from tests.fixtures_imports import fetch

    name = "supporter_location_migration"
    pg_cluster.create_database(name, template=TEMPLATE)
    url = pg_cluster.url("owner", name)
    lon, lat = DOORS[0]
    try:
        await asyncio.to_thread(downgrade, url, BEFORE)
        await _small_world(url)
        door = (await fetch(url, "SELECT id FROM address ORDER BY id LIMIT 1"))[0][0]
        cid = (
            await fetch(
                url,
                "INSERT INTO campaign (name, election_date) VALUES ('M', '2027-06-11') "
                "RETURNING id",
            )
        )[0][0]
        settings = Settings(
            data_keys=json.dumps({"mig": base64.b64encode(b"m" * 32).decode()}),
            data_key_id="mig",
        )
        cipher = Cipher.from_settings(settings)
        sid = uuid.uuid4()
        await fetch(
            url,
            "WITH s AS (INSERT INTO supporter (campaign_id, id, key_id, name_enc, address_id, "
            "geom, geocode_level) VALUES ($1, $2, 'mig', $3, $4, "
            "ST_SetSRID(ST_MakePoint($5, $6), 4326), 'manual') RETURNING id) "
            "INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at, "
            "given_by_subject, channel, wording_version, notice_version, collected_by) "
            "SELECT $1, id, 'mapping', now(), true, 'form', 'w', 'n', 'SYNTHETIC test' FROM s",
            cid,
            sid,
            cipher.encrypt("Synthetic Person", ad=aad(cid, sid, "name")),
            door,
            lon,
            lat,
        )
        for var in ("PORTE_DATA_KEYS", "PORTE_DATA_KEY_ID"):
            monkeypatch.delenv(var, raising=False)
        with pytest.raises(Exception, match="PORTE_DATA_KEYS") as refused:
            await asyncio.to_thread(upgrade, url, HEAD_REVISION)
        assert type(refused.value).__name__ == "MigrationRefused"
        assert "1 supporter(s)" in str(refused.value)
        assert "Nothing was changed" in str(refused.value)
        assert (await fetch(url, "SELECT version_num FROM alembic_version"))[0][0] == BEFORE
        assert (await fetch(url, "SELECT address_id FROM supporter"))[0][0] == door

        monkeypatch.setenv("PORTE_DATA_KEYS", settings.data_keys)
        monkeypatch.setenv("PORTE_DATA_KEY_ID", settings.data_key_id)
        await asyncio.to_thread(upgrade, url, HEAD_REVISION)
        row = (
            await fetch(
                url,
                "SELECT key_id, name_enc, address_id_enc, point_enc, tile_id, bv_code, iris_code "
                "FROM supporter",
            )
        )[0]
        assert row["bv_code"] == "T_0001" and row["iris_code"] == "T_IRIS"
        assert row["tile_id"].startswith("CRS3035RES200mN")
        assert cipher.decrypt(
            row["address_id_enc"], key_id="mig", ad=aad(cid, sid, "address_id")
        ) == str(door)
        assert cipher.decrypt(row["point_enc"], key_id="mig", ad=aad(cid, sid, "point")) == (
            f"{lon!r} {lat!r}"
        )
        assert cipher.decrypt(row["name_enc"], key_id="mig", ad=aad(cid, sid, "name")) == (
            "Synthetic Person"
        )
        columns = {
            r[0]
            for r in await fetch(
                url,
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'supporter'",
            )
        }
        assert not {"address_id", "geom"} & columns

        # and back: the door is decrypted into the old columns
        await asyncio.to_thread(downgrade, url, BEFORE)
        back = (await fetch(url, "SELECT address_id, ST_X(geom), ST_Y(geom) FROM supporter"))[0]
        assert tuple(back) == (door, lon, lat)
        await asyncio.to_thread(upgrade, url)
    finally:
        pg_cluster.drop_database(name)


async def test_migration_needs_no_key_when_no_supporter_is_placed(pg_cluster, monkeypatch):
    from app.migrate import downgrade, upgrade
    from tests.conftest import TEMPLATE
    from tests.fixtures_imports import fetch

    name = "supporter_location_empty"
    pg_cluster.create_database(name, template=TEMPLATE)
    url = pg_cluster.url("owner", name)
    try:
        await asyncio.to_thread(downgrade, url, BEFORE)
        for var in ("PORTE_DATA_KEYS", "PORTE_DATA_KEY_ID"):
            monkeypatch.delenv(var, raising=False)
        await asyncio.to_thread(upgrade, url, HEAD_REVISION)
        assert (await fetch(url, "SELECT version_num FROM alembic_version"))[0][0] == HEAD_REVISION
    finally:
        pg_cluster.drop_database(name)
