"""Moving in from NationBuilder, CiviCRM and DigitaleBox: one command per export, a
lawful basis per row or the row does not come, opinions and notes dropped, a dry run first.

The three files of tests/data/crm/ are SYNTHETIC (made-up people at example.test; the street
addresses are real doors of Bruz, from the sample database). Their dates are written as of
2026-12-01 and moved here by the days elapsed since, so the expected counts hold on any day.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.errors import InvalidInput
from app.services.people.supporters import crm_cells, sources
from app.services.people.supporters.csvfile import CsvStream, _decode, file_encoding
from tests.test_supporters_cli import _admin_email
from tests.test_supporters_cli import _porte as _porte_fr

DATA = Path(__file__).parent / "data" / "crm"
WRITTEN_ON = date(2026, 12, 1)
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_FR = re.compile(r"(?<!\d)(\d{2})/(\d{2})/(\d{4})(?!\d)")
NB_MAPPING = {
    "columns": {"rgpd_consent_date": "consent_given_at"},
    "defaults": {
        "consent_purposes": "contact|newsletter",
        "consent_channel": "form",
        "consent_wording_version": "nb-site-2025",
        "consent_notice_version": "n-2025",
        "consent_collected_by": "Formulaire du site (NationBuilder)",
        "consent_given_by_subject": True,
    },
}


async def _porte(sample_db, settings, *args: str):
    """``porte supporters import`` with its messages in English (these tests read them)."""
    return await _porte_fr(sample_db, settings, *args, lang="en")


def shifted(name: str, tmp_path: Path) -> Path:
    """A copy of an example file with every date moved to today's point of view."""
    src = DATA / name
    encoding = file_encoding(src)
    days = (date.today() - WRITTEN_ON).days
    body = src.read_text(encoding=encoding)

    def iso(m: re.Match) -> str:
        d = date(int(m[1]), int(m[2]), int(m[3])) + timedelta(days=days)
        return d.isoformat()

    def fr(m: re.Match) -> str:
        d = date(int(m[3]), int(m[2]), int(m[1])) + timedelta(days=days)
        return d.strftime("%d/%m/%Y")

    out = tmp_path / name
    out.write_text(_FR.sub(fr, _ISO.sub(iso, body)), encoding=encoding, newline="")
    return out


async def _rows(owner_engine, cid) -> dict[str, dict]:
    """Stored supporters by e-mail hash-free key: their bases, purposes and tags (no decryption:
    the row's id -> what the database holds about its legal basis)."""
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT s.id, s.geocode_level, s.notes_enc IS NULL AS no_notes, "
                    "s.phone_enc IS NULL AS no_phone, s.last_contact_at, "
                    "(SELECT array_agg(c.purpose || ':' || c.basis ORDER BY c.purpose) "
                    " FROM supporter_consent c WHERE c.campaign_id = s.campaign_id "
                    " AND c.supporter_id = s.id) AS grants, "
                    "(SELECT array_agg(t.tag ORDER BY t.tag) FROM supporter_tag t "
                    " WHERE t.campaign_id = s.campaign_id AND t.supporter_id = s.id) AS tags "
                    "FROM supporter s WHERE s.campaign_id = :c"
                ),
                {"c": cid},
            )
        ).all()
    return {str(r.id): dict(r._mapping) for r in rows}


async def _by_name(client, world) -> dict[str, dict]:
    r = await client.get(world.url("/supporters?limit=100"), headers=world.headers["admin"])
    assert r.status_code == 200, r.text
    return {i["name"].split()[0]: i for i in r.json()["items"]}


def _report(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


async def test_nationbuilder_export_dry_run_then_import(
    sample_db, settings, owner_engine, world, tmp_path, client
):
    src = shifted("nationbuilder_people_SYNTHETIC.csv", tmp_path)
    mapping = tmp_path / "nb.json"
    mapping.write_text(json.dumps(NB_MAPPING), encoding="utf-8")
    email = await _admin_email(owner_engine, world)
    common = [str(src), "--campaign", str(world.campaign_id), "--admin", email]
    args = [*common, "--from", "nationbuilder", "--mapping", str(mapping)]
    args += ["--tags", "volunteer,adherent"]

    # the dry run reads everything, says what it would do, and stores nothing
    res = await _porte(sample_db, settings, *args, "--dry-run")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Read as a NationBuilder export: 32 of 33 columns are NationBuilder's" in out
    assert re.search(r"support_level\s+dropped: a political opinion", out)
    assert re.search(r"inferred_support_level\s+dropped: a political opinion", out)
    assert re.search(r"party\s+dropped: a political opinion", out)
    assert re.search(r"note\s+dropped: free text", out)
    assert re.search(r"nationbuilder_id\s+dropped: an identifier", out)
    assert re.search(r"born_at\s+dropped: not needed", out)
    assert re.search(r"primary_address2\s+-> address", out)
    assert re.search(r"rgpd_consent_date\s+-> consent record", out)
    assert "Rows: 14 read, 10 would be imported, 4 refused, 0 rejected." in out
    assert "By legal basis: consent 2, former_member 1, member 6, regular_contact 1." in out, out
    assert "refused: the person is deceased" in out
    assert "a single donation or event is not regular contact" in out
    assert "a former member whose membership ended before the retention" in out
    assert "no consent date, no membership" in out
    assert "imported without 'newsletter': the person opted out of e-mails" in out
    assert "imported for 'mapping' only" in out
    assert "imported without the phone number: the person asked not to be phoned" in out
    assert "outside France" in out
    assert "Duplicates (keyed hash of e-mail and phone): 0 in the file, 0 already" in out
    assert re.search(r"Geocoding: door 5, street 1, commune 1, none 3 ", out), out
    assert (
        "Tags kept: adherent 1, volunteer 1. Not in --tags, dropped: sympathisant-probable 1" in out
    )
    assert "Dry run: nothing was stored." in out
    assert await _rows(owner_engine, world.campaign_id) == {}
    assert "vote pour nous" not in out  # no value of a dropped column is ever shown

    # the import itself: one command, the same counts, stored
    res = await _porte(sample_db, settings, *args)
    assert res.exit_code == 0, res.output
    assert "Imported 10 of 14 rows" in res.output
    assert "4 rows were refused" in res.output
    refused = _report(Path(str(src) + ".rejects.csv"))[1:]
    assert [r[0] for r in refused] == ["4", "6", "7", "10"]
    assert refused[1][1:] == ["basis", refused[1][2]] and "single donation" in refused[1][2]
    assert refused[2][1] == "deceased"
    stored = await _by_name(client, world)
    assert set(stored) == {
        "Alice", "Bruno", "David", "Gaëlle", "Hugo", "Jules", "Léa", "Mathis", "Nora", "Oscar"
    }  # fmt: skip
    rows = await _rows(owner_engine, world.campaign_id)
    by = {n: rows[s["id"]] for n, s in stored.items()}
    assert by["Alice"]["grants"] == [
        "contact:member", "mapping:member", "newsletter:member", "volunteering:member"
    ]  # fmt: skip
    assert by["Alice"]["tags"] == ["adherent", "volunteer"]
    assert by["Bruno"]["grants"] == ["contact:former_member", "mapping:former_member"]
    assert by["David"]["grants"][0] == "contact:regular_contact"
    assert by["Gaëlle"]["grants"] == ["mapping:member"]
    assert by["Hugo"]["no_phone"] and not by["Alice"]["no_phone"]
    assert by["Nora"]["grants"] == ["contact:consent", "newsletter:consent"]
    assert by["Nora"]["geocode_level"] == "none"  # no mapping purpose: never geocoded
    assert by["Oscar"]["grants"] == [
        "contact:consent", "mapping:member", "newsletter:consent", "volunteering:member"
    ]  # fmt: skip
    assert all(r["no_notes"] for r in rows.values())  # NationBuilder's note never comes
    assert by["Alice"]["geocode_level"] == "housenumber"
    assert by["David"]["geocode_level"] == "housenumber"  # the street line of three
    assert by["Léa"]["geocode_level"] == "street"
    assert by["Jules"]["geocode_level"] == "none"
    # phones written in national, international and spreadsheet-mangled forms
    assert stored["Alice"]["phone"] == "+33610000001"
    assert stored["David"]["phone"] == "+33610000004"
    assert stored["Mathis"]["phone"] == "+33612000012"
    assert stored["Bruno"]["phone"] == "+33610000002"
    assert "Belgique" not in stored["Jules"]["address"] and stored["Jules"]["address"].endswith(
        "BE"
    )
    assert "Bâtiment B" in stored["David"]["address"]
    assert stored["Jules"]["geocode_note"].startswith("the address is in BE")
    # the evidence is recorded per purpose (right of access shows it), and the audit event
    r = await client.get(
        world.url(f"/supporters/{stored['Bruno']['id']}/export"), headers=world.headers["admin"]
    )
    cons = r.json()["consents"]
    assert {c["basis"] for c in cons} == {"former_member"}
    assert all(
        c["evidence"].startswith("NationBuilder: membership 'Adhérent' ended on") for c in cons
    )
    assert cons[0]["source"] == "nationbuilder" and cons[0]["given_by_subject"] is False
    assert r.json()["supporter"]["tags"] == []
    async with owner_engine.connect() as conn:
        ev = (
            await conn.execute(
                text(
                    "SELECT row_count, details FROM audit_event WHERE campaign_id = :c "
                    "AND action = 'supporter.import'"
                ),
                {"c": world.campaign_id},
            )
        ).one()
    assert ev.row_count == 10 and ev.details["source"] == "nationbuilder"
    assert ev.details["refused"] == 4 and ev.details["by_basis"]["member"] == 6
    # no opinion anywhere: the opinion columns' values are nowhere in the database
    async with owner_engine.connect() as conn:
        dump = (
            await conn.execute(
                text(
                    "SELECT string_agg(coalesce(evidence, '') || collected_by, ' ') "
                    "FROM supporter_consent WHERE campaign_id = :c"
                ),
                {"c": world.campaign_id},
            )
        ).scalar()
    assert "vote" not in dump.lower() and "sympathisant" not in dump.lower()


async def test_civicrm_export_recognised_automatically(
    sample_db, settings, owner_engine, world, tmp_path, client
):
    src = shifted("civicrm_contacts_SYNTHETIC.csv", tmp_path)
    email = await _admin_email(owner_engine, world)
    res = await _porte(
        sample_db,
        settings,
        str(src),
        "--campaign",
        str(world.campaign_id),
        "--admin",
        email,
        "--from",
        "auto",
        "--tags",
        "volunteer",
        "--valid-rows-only",
    )
    # Yasmine repeats Pauline's e-mail: rejected as a duplicate, the rest imported
    assert res.exit_code == 3, res.output
    out = res.output
    assert "Recognised as a CiviCRM export" in out
    assert "UTF-8 with a byte-order mark, comma-separated" in out
    assert "Repeated column names: Email ×2" in out
    assert "Rows: 11 read, 5 imported, 5 refused, 1 rejected." in out
    assert "By legal basis: former_member 1, member 4." in out
    assert "refused: not a person" in out and "in the trash" in out
    assert "a former member, but the file gives no end date" in out
    assert re.search(r"Note\(s\)\s+dropped: free text", out)
    assert re.search(r"Gender\s+dropped: not needed", out)
    assert "Duplicates (keyed hash of e-mail and phone): 1 in the file" in out
    assert "Tags kept: volunteer 1. Not in --tags, dropped: donor 1, newsletter 1." in out
    stored = await _by_name(client, world)
    assert set(stored) == {"Pauline", "Quentin", "Rose", "Xavier", "Zoé"}
    # the e-mail came from the second "Email" column; the address from the third line of three
    assert stored["Pauline"]["email"] == "pauline.civi@example.test"
    assert stored["Pauline"]["tags"] == ["volunteer"]
    assert stored["Zoé"]["geocode_level"] == "housenumber"
    assert stored["Xavier"]["phone"] == "+33620000009"
    rows = await _rows(owner_engine, world.campaign_id)
    assert rows[stored["Quentin"]["id"]]["grants"] == ["contact:member", "mapping:member"]
    assert rows[stored["Rose"]["id"]]["grants"][0] == "contact:former_member"


async def test_digitalebox_export_over_http_latin1_semicolons(client, world, tmp_path):
    src = shifted("digitalebox_contacts_SYNTHETIC.csv", tmp_path)
    h = world.headers["admin"]
    files = {"file": (src.name, src.read_bytes(), "text/csv")}
    data = {"source": "digitalebox", "tags": "adherent,benevole", "dry_run": "true"}
    r = await client.post(world.url("/supporters/import"), headers=h, files=files, data=data)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["dry_run"] is True and rep["would_load"] == 6
    assert rep["file"]["encoding"] == "Windows-1252 (Latin-1)"
    assert rep["file"]["delimiter"] == "semicolon"
    dropped = {c["column"]: c["dropped"] for c in rep["dropped_columns"]}
    assert dropped["Catégorie"] == "opinion" and dropped["Notes"] == "free_text"
    assert dropped["Date de naissance"] == "not_needed"
    assert (await client.get(world.url("/supporters"), headers=h)).json()["items"] == []

    del data["dry_run"]
    r = await client.post(world.url("/supporters/import"), headers=h, files=files, data=data)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["loaded"] == 6 and rep["refused_count"] == 2 and rep["rejected_count"] == 0
    assert rep["by_basis"] == {"member": 4, "former_member": 1, "regular_contact": 1}
    assert rep["refused"] == {"no_basis": 2}
    assert [x["row"] for x in rep["refused_rows"]] == [5, 8]
    effects = rep["opt_outs_and_left_out"]
    assert effects["email_opt_out"]["rows"] == 1  # "Désabonné"
    assert effects["phone_invalid"]["rows"] == 1 and effects["email_invalid"]["rows"] == 1
    assert effects["not_france"]["rows"] == 1
    assert rep["tags"]["kept"] == {"benevole": 1, "adherent": 1}
    assert rep["tags"]["dropped"] == {"sympathisant": 1, "tractage": 1}
    stored = await _by_name(client, world)
    assert stored["Amélie"]["phone"] == "+33630000001"
    assert stored["François"]["email"] is None and stored["François"]["phone"] is None
    assert stored["Hélène"]["geocode_level"] == "housenumber"
    assert stored["Élodie"]["geocode_level"] == "none"


async def test_an_export_of_another_system_is_refused_before_reading_rows(
    sample_db, settings, owner_engine, world, tmp_path
):
    src = shifted("nationbuilder_people_SYNTHETIC.csv", tmp_path)
    email = await _admin_email(owner_engine, world)
    common = [str(src), "--campaign", str(world.campaign_id), "--admin", email]
    res = await _porte(sample_db, settings, *common, "--from", "civicrm")
    assert res.exit_code == 1, res.output
    assert "looks like a NationBuilder export, not CiviCRM" in res.output
    assert "--from nationbuilder" in res.output
    # an opinion cannot be smuggled in through the tag allow-list
    res = await _porte(sample_db, settings, *common, "--from", "auto", "--tags", "sympathisant")
    assert res.exit_code == 1 and "names an opinion" in res.output, res.output
    # a plain file that no system recognises, with auto
    plain = tmp_path / "plain.csv"
    plain.write_text("Nom;Courriel\nSynthetic;s@example.test\n", encoding="utf-8")
    res = await _porte(
        sample_db,
        settings,
        str(plain),
        "--campaign",
        str(world.campaign_id),
        "--admin",
        email,
        "--from",
        "auto",
    )
    assert res.exit_code == 1 and "does not look like" in res.output, res.output
    async with owner_engine.connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM supporter WHERE campaign_id = :c"),
                {"c": world.campaign_id},
            )
        ).scalar()
    assert n == 0


async def test_database_keeps_a_basis_for_every_supporter(owner_engine, world):
    sid = uuid.uuid4()
    insert = (
        "INSERT INTO supporter_consent (campaign_id, supporter_id, purpose, given_at, "
        "given_by_subject, collected_by, basis, evidence, source) "
        "VALUES (:c, :i, 'contact', now(), false, 'NationBuilder export', :b, :e, 'nationbuilder')"
    )
    # a membership basis without its evidence is refused
    with pytest.raises(DBAPIError, match="given_by_subject_or_evidence"):
        async with owner_engine.begin() as conn:
            await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
            await conn.execute(
                text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
                {"c": world.campaign_id, "i": sid},
            )
            await conn.execute(
                text(insert), {"c": world.campaign_id, "i": sid, "b": "member", "e": None}
            )
    # "consent" that the person did not give is still refused
    with pytest.raises(DBAPIError, match="given_by_subject_or_evidence"):
        async with owner_engine.begin() as conn:
            await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
            await conn.execute(
                text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
                {"c": world.campaign_id, "i": sid},
            )
            await conn.execute(
                text(insert), {"c": world.campaign_id, "i": sid, "b": "consent", "e": "x"}
            )
    # with its evidence, a member is stored without consent
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET CONSTRAINTS supporter_requires_consent DEFERRED"))
        await conn.execute(
            text("INSERT INTO supporter (campaign_id, id) VALUES (:c, :i)"),
            {"c": world.campaign_id, "i": sid},
        )
        await conn.execute(
            text(insert),
            {"c": world.campaign_id, "i": sid, "b": "member", "e": "membership since 2021"},
        )
    # ... and its last basis cannot be taken away (the consent trigger's guarantee, kept)
    with pytest.raises(DBAPIError, match="no recorded legal basis"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM supporter_consent WHERE campaign_id = :c AND supporter_id = :i"),
                {"c": world.campaign_id, "i": sid},
            )


# ----------------------------------------------------------------------------- no database
def test_detection_and_column_plan(english):
    nb = ["nationbuilder_id", "first_name", "email", "tag_list", "support_level", "primary_zip"]
    assert sources.detect(nb).system == "nationbuilder"
    civi = ["Contact ID", "Contact Type", "First Name", "Do Not Email", "Email", "Postal Code"]
    assert sources.detect(civi).system == "civicrm"
    dbx = ["Prénom", "Nom", "Email", "Mots clés", "Catégorie", "Code postal"]
    assert sources.detect(dbx).system == "digitalebox"
    assert sources.detect(["name", "email"]).system is None
    with pytest.raises(InvalidInput, match="looks like a CiviCRM export"):
        sources.choose("digitalebox", civi)
    plan = sources.plan_columns(
        "nationbuilder",
        ["email", "email (2)", "Score de soutien", "Remarques", "Ma colonne"],
        ["email", "email", "Score de soutien", "Remarques", "Ma colonne"],
        {},
    )
    assert plan.sources["email"] == ["email", "email (2)"]  # repeated name: both, in order
    assert plan.dropped == {
        "Score de soutien": "opinion",  # a custom column that scores an opinion
        "Remarques": "free_text",
        "Ma colonne": "unknown",
    }


def test_tags_allow_list_refuses_opinions(english):
    assert sources.allow_list("Volunteer, Adhérent") == {"volunteer", "adherent"}
    for bad in ("sympathisant", "soutien-fort", "perceived_left", "indecis"):
        with pytest.raises(InvalidInput, match="names an opinion"):
            sources.allow_list(bad)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("33612345678", "+33612345678"),
        ("612345678", "+33612345678"),
        ("+32 470 12 34 56", "+32470123456"),
        ("06 12 34", None),
        ("appeler le soir", None),
    ],
)
def test_phone_forms(typed, e164):
    assert crm_cells.crm_phone(typed, france=True) == e164


def test_street_line_of_a_three_line_address():
    lines = ["Résidence Les Tilleuls", "17 Rue Yves et Jean Tupin", "Bâtiment B"]
    assert crm_cells.street_line(lines) == "17 Rue Yves et Jean Tupin"
    assert crm_cells.street_line(["Bât. C", "Allée des Roses"]) == "Allée des Roses"
    assert (
        crm_cells.is_france("FR") and crm_cells.is_france("") and crm_cells.is_france("La Réunion")
    )
    assert not crm_cells.is_france("Belgique") and not crm_cells.is_france("BE")


def test_encodings_bom_and_repeated_columns(tmp_path):
    text_ = "Prénom;Email;Email\nÉlodie;;e@example.test\n"
    for enc in ("utf-8", "utf-8-sig", "cp1252", "utf-16"):
        path = tmp_path / f"f-{enc}.csv"
        path.write_text(text_, encoding=enc, newline="")
        stream = CsvStream(path)
        try:
            assert stream.header == ["Prénom", "Email", "Email (2)"], enc
            assert stream.info.duplicates == {"Email": 2}
            ((line, row),) = next(stream.chunks())
            assert line == 2 and row["Prénom"] == "Élodie" and row["Email (2)"] == "e@example.test"
        finally:
            stream.close()
        decoded, _enc = _decode(text_.encode(enc))
        assert decoded.lstrip("\ufeff").startswith("Prénom"), enc
    # a comma file with a BOM, read from bytes like an upload
    body = io.BytesIO("\ufeffa,b\n1,2\n".encode())
    assert _decode(body.read())[1] == "utf-8-sig"


def test_a_broken_byte_order_mark_is_a_clear_error(english):
    with pytest.raises(InvalidInput, match="byte-order mark but is not valid UTF-16"):
        _decode(b"\xff\xfea\x00b")
    with pytest.raises(InvalidInput, match="byte-order mark but is not valid UTF-8"):
        _decode(b"\xef\xbb\xbfa,b\n\xe9,1\n")
    assert _decode("Prénom;Nom\n".encode("cp1252")) == ("Prénom;Nom\n", "cp1252")
