"""The demo set-up: accounts per role, turfs cut through the API, a working invite link."""

from __future__ import annotations

from app.commands.demo import _seed
from app.commands.demo_field import DEMO_DISTRICT
from tests.conftest import make_settings

PASSWORD = "demo-test-password"


async def test_demo_seed_gives_a_volunteer_link_with_doors(sample_db, client):
    settings = make_settings(sample_db)
    first = await _seed(settings, sample_db.owner, PASSWORD)
    again = await _seed(settings, sample_db.owner, PASSWORD)
    assert first["campaign_id"] == again["campaign_id"]
    assert first["invite_link"] == again["invite_link"], "re-running the demo reuses its link"
    assert first["turfs"] >= 2
    assert sorted(first["accounts"]) == [
        f"{r}@demo.local" for r in ("admin", "analyst", "organiser", "volunteer")
    ]

    # The printed link opens a session limited to one assignment with doors in that district.
    token = first["invite_link"].split("#invite=", 1)[1]
    session = await client.post("/auth/invite", json={"token": token})
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["assignment_id"] is not None
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    cid = first["campaign_id"]
    doors = await client.get(
        f"/campaigns/{cid}/assignments/{body['assignment_id']}/doors", headers=headers
    )
    assert doors.status_code == 200, doors.text
    features = doors.json()["features"]
    assert features, "the invite's turf has doors"

    # The volunteer account has its own assignment; the organiser sees both.
    signin = await client.post(
        "/auth/token", data={"username": "organiser@demo.local", "password": PASSWORD}
    )
    staff = {"Authorization": f"Bearer {signin.json()['access_token']}"}
    turfs = (await client.get(f"/campaigns/{cid}/turfs", headers=staff)).json()["turfs"]
    assert {t["district_code"] for t in turfs} == {DEMO_DISTRICT}
    active = await client.get(
        f"/campaigns/{cid}/assignments", params={"active": "true"}, headers=staff
    )
    assert len(active.json()["assignments"]) >= 2

    # The whole story: turfs balanced by households, two rounds of SYNTHETIC visits (grey doors,
    # progress), and a side that makes every ranking factor count.
    households = [t["households"] for t in turfs]
    assert max(households) <= 1.3 * min(households), households
    assert first["rounds"] == 2 and 100 <= first["visits"] <= 1000
    assert again["visits"] == 0, "re-running the demo adds no visits"
    progress = (await client.get(f"/campaigns/{cid}/progress", headers=staff)).json()
    assert [r["number"] for r in progress["rounds"]] == [1, 2]
    per_round = progress["campaign"]["rounds"]
    assert all(per_round[k]["visited"] > 0 for k in per_round), per_round
    ranking = await client.get(f"/campaigns/{cid}/ranking?limit=5", headers=staff)
    assert ranking.status_code == 200, ranking.text
    status = {f["name"]: f["status"] for f in ranking.json()["factors"]}
    wanted = ("side_score", "closeness", "swing", "coverage", "supporters", "abstention_rate")
    assert {n: status[n] for n in wanted} == dict.fromkeys(wanted, "used"), status


async def test_demo_seeds_synthetic_consented_supporters(sample_db, client, owner_engine):
    """The review list, the aggregates (cells below k suppressed) and the GDPR rights can be
    tried on the demo: a few hundred SYNTHETIC supporters, each with consent per purpose,
    stored through the service's own import (encrypted like real ones)."""
    from sqlalchemy import text

    settings = make_settings(sample_db)
    first = await _seed(settings, sample_db.owner, PASSWORD)
    again = await _seed(settings, sample_db.owner, PASSWORD)
    cid = first["campaign_id"]
    assert 200 <= first["supporters"] <= 500
    assert again["supporters"] == first["supporters"] and again["supporters_created"] == 0
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(DISTINCT s.id) AS people, count(*) AS consents, "
                    "count(DISTINCT c.purpose) AS purposes, "
                    "bool_and(c.given_by_subject) AS by_subject, "
                    "bool_and(c.collected_by LIKE '%SYNTHÉTIQUES%') AS labelled, "
                    "bool_and(s.name_enc IS NOT NULL) AS encrypted "
                    "FROM supporter s JOIN supporter_consent c ON c.campaign_id = s.campaign_id "
                    "AND c.supporter_id = s.id WHERE s.campaign_id = :c"
                ),
                {"c": cid},
            )
        ).one()
    assert row.people == first["supporters"] and row.consents > row.people
    assert row.purposes == 4 and row.by_subject and row.labelled and row.encrypted

    signin = await client.post(
        "/auth/token", data={"username": "admin@demo.local", "password": PASSWORD}
    )
    admin = {"Authorization": f"Bearer {signin.json()['access_token']}"}
    listed = (await client.get(f"/campaigns/{cid}/supporters?limit=5", headers=admin)).json()
    assert all("SYNTHÉTIQUE" in s["name"] for s in listed["items"])
    review = (await client.get(f"/campaigns/{cid}/supporters/review", headers=admin)).json()
    assert review["items"], "some supporters wait for review (street only, a typo)"
    agg = await client.get(f"/campaigns/{cid}/supporters/aggregates", headers=admin)
    cells = agg.json()["cells"]
    assert any(isinstance(c.get("count"), int) and c["count"] >= 11 for c in cells)
    assert any(c.get("count") is None for c in cells), "small cells are suppressed"
    one = listed["items"][0]["id"]
    export = await client.get(f"/campaigns/{cid}/supporters/{one}/export", headers=admin)
    assert export.status_code == 200, export.text


async def test_demo_mail_goes_to_a_folder_the_served_app_is_pointed_at(tmp_path, monkeypatch):
    """Without a mail server, `porte demo` starts a local SMTP sink writing to .porte/mail (beside
    the cluster) and points the served app at it; a configured server is left alone."""
    from app.commands.demo_mail import mail_folder, start_demo_mail
    from app.config import Settings, get_settings
    from app.mail import send_mail

    assert mail_folder(Settings(db_dir=tmp_path / ".porte" / "db")) == tmp_path / ".porte" / "mail"
    assert start_demo_mail(Settings(smtp_host="mail.example.org")) is None
    # recorded by monkeypatch first (start_demo_mail overwrites them): restored after the test
    for var, value in (("HOST", ""), ("PORT", "25"), ("TLS", "none")):
        monkeypatch.setenv(f"PORTE_SMTP_{var}", value)
    (tmp_path / "0001.eml").write_text("a message of an earlier run")
    sink = start_demo_mail(Settings(smtp_host=""), folder=tmp_path)
    assert sink is not None
    try:
        settings = get_settings()  # what the served app reads
        assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", sink.port)
        await send_mail(
            settings,
            to="someone@example.test",
            subject="Confirm",
            body="Open http://127.0.0.1:8000/privacy/x/confirm#code=abc",
        )
        sink.wait_for("someone@example.test")
    finally:
        sink.stop()
    (written,) = sorted(tmp_path.glob("*.eml"))
    assert "#code=abc" in written.read_text()
