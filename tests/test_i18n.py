"""French first, English on request: the catalogue is complete, and the API, the command line and
round names speak the language asked (Accept-Language, --lang, PORTE_LANG), French by default."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from babel.messages.catalog import Catalog
from typer.testing import CliRunner

from app.cli import cli
from app.i18n import _, current, number, reset_language, set_language
from app.i18n_catalogue import LANGS, extract, fields, problems, read
from tests.conftest import make_settings
from tests.factories import make_world

EN = {"Accept-Language": "en"}


# ---- the catalogue -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Catalog:
    return extract()


def test_every_message_of_the_code_has_a_french_translation(template):
    """Every `_()`/`N_()` message of app/ (babel's extractor) is translated, not fuzzy, with the
    same {fields}. Fix with `./dev i18n`, then translate the new entries of messages.po."""
    assert sum(1 for m in template if m.id) > 300  # the extractor found the code's messages
    assert any(loc[0].startswith("app/templates/") for m in template for loc in m.locations), (
        "the HTML templates' messages are extracted too"
    )
    for lang in LANGS:  # every catalogue, French and any language added later
        wrong = problems(template, read(lang))
        assert wrong == [], "\n".join(wrong)


def test_the_check_finds_missing_fuzzy_and_mismatched_translations():
    template = Catalog(locale="fr")
    for msg in ("Door {n} of {total}", "Plain words", "Fuzzy one", "Missing {x}"):
        template.add(msg, locations=[("app/x.py", 1)])
    catalog = Catalog(locale="fr")
    catalog.add("Door {n} of {total}", "Porte {n} sur {tot}")
    catalog.add("Plain words", "Des mots simples")
    catalog.add("Fuzzy one", "Floue", flags=["fuzzy"])
    found = problems(template, catalog)
    assert len(found) == 3
    assert found[0].startswith("fields differ: 'Door {n} of {total}'")
    assert any(f.startswith("fuzzy translation: 'Fuzzy one'") for f in found)
    assert any(f.startswith("no translation: 'Missing {x}'") for f in found)


def test_fields_reads_format_templates():
    assert fields("Door {n} of {total:,}, {{id}} stays") == {"n", "total"}
    assert fields('a JSON example {"key": 1') == set()


def test_translation_follows_the_current_language():
    assert current() == "fr"
    assert _("Round {n}").format(n=2) == "Tournée 2"
    token = set_language("en")
    try:
        assert _("Round {n}").format(n=2) == "Round 2"
        assert number(12345.5, 1) == "12,345.5"
    finally:
        reset_language(token)
    assert number(12345.5, 1) == "12\u202f345,5"


# ---- the API ----------------------------------------------------------------------------------


async def test_api_errors_are_french_by_default_and_english_on_request(client):
    r = await client.get("/districts/NOPE")
    assert r.status_code == 404
    body = r.json()
    assert body["title"] == "Introuvable"
    assert body["detail"].startswith("Aucun bureau de vote de code 'NOPE'")
    assert r.headers["content-language"] == "fr"
    assert "Accept-Language" in r.headers["vary"]

    r = await client.get("/districts/NOPE", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status_code == 404
    assert r.json()["title"] == "Not found"
    assert r.json()["detail"].startswith("No district with code 'NOPE'")
    assert r.headers["content-language"] == "en"

    # an unknown route, in Starlette's hands
    r = await client.get("/no/such/page")
    assert r.status_code == 404 and r.json()["detail"].startswith("Rien à cette adresse")


async def test_validation_errors_keep_the_field_and_give_the_reason_in_french(client):
    r = await client.get("/districts", params={"limit": 0, "bbox": "1,2,3"})
    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "Saisie invalide"
    reasons = {e["field"]: e["reason"] for e in body["errors"]}
    assert reasons["query.limit"] == "doit être supérieur ou égal à 1"
    assert body["field"] == "query.limit"
    assert "query.limit: doit être supérieur ou égal à 1" in body["detail"]

    r = await client.get("/districts", params={"limit": 0}, headers=EN)
    reasons = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert reasons["query.limit"] == "should be greater than or equal to 1"


async def test_validation_reasons_of_a_json_body(client, settings, owner_engine):
    world = await make_world(owner_engine, settings)
    org = world.headers["organiser"]
    body = {
        "turf_id": "not-a-uuid",
        "volunteer_email": "x@example.org",
        "starts_at": "10/01/2026",
        "surprise": 1,
    }
    r = await client.post(world.url("/assignments"), json=body, headers=org)
    assert r.status_code == 422, r.text
    reasons = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert reasons["turf_id"].startswith("doit être un UUID")
    assert reasons["starts_at"].startswith("doit être une date et une heure (ISO 8601")
    assert reasons["surprise"].startswith("champ inconnu")
    types = {e["field"]: e["type"] for e in r.json()["errors"]}
    assert types["surprise"] == "extra_forbidden"

    r = await client.post(world.url("/assignments"), json={}, headers={**org, **EN})
    reasons = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert reasons["turf_id"] == "this field is required"

    # a validator of ours: its own words, without pydantic's "Value error, " prefix
    two = {"turf_id": str(uuid.uuid4()), "volunteer_email": "a@example.org"}
    r = await client.post(
        world.url("/assignments"), json={**two, "invite_id": str(uuid.uuid4())}, headers=org
    )
    assert r.status_code == 422
    assert "donnez l'un de volunteer_email, volunteer_user_id ou invite_id" in r.json()["detail"]
    assert "Value error" not in r.json()["detail"]

    # a choice among literals, joined with the language's "or"
    cut = {"balance": "rooms", "turf_size": 40}
    r = await client.post(world.url("/districts/92002_0001/cut"), json=cut, headers=org)
    reasons = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert reasons["balance"] == "doit valoir 'households', 'doors' ou 'minutes'"


async def test_porte_lang_sets_the_server_default(sample_db):
    from app.main import create_app

    english = create_app(make_settings(sample_db, lang="en"))
    transport = httpx.ASGITransport(app=english)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/districts/NOPE")
        assert r.json()["title"] == "Not found"
        r = await c.get("/districts/NOPE", headers={"Accept-Language": "fr-FR"})
        assert r.json()["title"] == "Introuvable"


async def test_rounds_are_named_in_the_language_of_who_starts_them(client, settings, owner_engine):
    world = await make_world(owner_engine, settings)
    org = world.headers["organiser"]
    first = await client.post(world.url("/rounds"), json={}, headers=org)
    assert first.status_code == 201, first.text
    assert first.json()["name"] == f"Tournée {first.json()['number']}"
    second = await client.post(world.url("/rounds"), json={}, headers={**org, **EN})
    assert second.json()["name"] == f"Round {second.json()['number']}"
    assert second.json()["number"] == first.json()["number"] + 1
    named = await client.post(world.url("/rounds"), json={"name": "Relance"}, headers=org)
    assert named.json()["name"] == "Relance"


# ---- the command line ----------------------------------------------------------------------


def _porte(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env)


async def test_cli_is_french_by_default_and_english_with_lang_or_porte_lang(monkeypatch):
    monkeypatch.delenv("PORTE_LANG", raising=False)
    fr = await asyncio.to_thread(_porte, ["admin", "create", "not-an-address"])
    assert fr.exit_code == 2
    assert "« not-an-address » n'est pas une adresse e-mail." in fr.output

    en = await asyncio.to_thread(_porte, ["--lang", "en", "admin", "create", "not-an-address"])
    assert en.exit_code == 2
    assert "'not-an-address' is not an e-mail address." in en.output

    env = await asyncio.to_thread(
        _porte, ["admin", "create", "not-an-address"], {"PORTE_LANG": "en_GB.UTF-8"}
    )
    assert "'not-an-address' is not an e-mail address." in env.output

    # --lang wins over PORTE_LANG; an unknown language is refused, naming the option
    both = await asyncio.to_thread(
        _porte, ["--lang", "fr", "admin", "create", "x"], {"PORTE_LANG": "en"}
    )
    assert "n'est pas une adresse e-mail" in both.output
    bad = await asyncio.to_thread(_porte, ["--lang", "de", "admin", "create", "x"])
    assert bad.exit_code == 2 and "--lang" in bad.output
    # the command's language does not leak into what runs after it
    assert current() == "fr"


async def test_cli_output_from_the_database_in_both_languages(sample_db, monkeypatch):
    monkeypatch.setenv("PORTE_DATABASE_URL", sample_db.app)
    monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", sample_db.owner)
    monkeypatch.delenv("PORTE_LANG", raising=False)
    who = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    fr = await asyncio.to_thread(_porte, ["admin", "rights", who])
    assert fr.exit_code == 1 and f"Aucun compte {who}." in fr.output
    en = await asyncio.to_thread(_porte, ["--lang", "en", "admin", "rights", who])
    assert en.exit_code == 1 and f"No account {who}." in en.output


@pytest.mark.parametrize(
    ("args", "fr", "en"),
    [
        (["db", "url"], "Aucune instance dans", "No cluster in"),
        (["import", "addresses", "{empty}"], "le fichier est vide (0 octet)", "the file is empty"),
        (["import", "sample", "--help"], "Usage", "Usage"),  # Typer's help stays as it is
        (["keys", "generate"], "# Mettez ces valeurs", "# Put these in the service's"),
    ],
)
async def test_each_command_group_speaks_french_and_english_with_lang(
    args, fr, en, sample_db, tmp_path, monkeypatch
):
    monkeypatch.delenv("PORTE_LANG", raising=False)
    monkeypatch.setenv("PORTE_DB_DIR", str(tmp_path / "no-cluster"))
    monkeypatch.setenv("PORTE_DATABASE_URL", sample_db.app)
    monkeypatch.setenv("PORTE_OWNER_DATABASE_URL", sample_db.owner)
    if args[0] == "db":
        monkeypatch.delenv("PORTE_DATABASE_URL")
        monkeypatch.delenv("PORTE_OWNER_DATABASE_URL")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    args = [a.format(empty=empty) for a in args]
    french = await asyncio.to_thread(_porte, args)
    english = await asyncio.to_thread(_porte, ["--lang", "en", *args])
    said_fr, said_en = (" ".join(r.output.split()) for r in (french, english))  # rich wraps
    assert fr in said_fr, french.output
    assert en in said_en, english.output
    if fr != en:
        assert en not in said_fr and fr not in said_en


def test_no_function_hides_the_translation_function():
    """A function that assigns ``_`` (``a, _, b = ...``) and also calls ``_()`` calls a string:
    TypeError at run time, on the refusal path only (found on the invite links)."""
    import ast
    from pathlib import Path

    import app

    bad = []
    for path in sorted(Path(app.__file__).parent.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            stores, calls = [], False
            todo = [(child, False) for child in ast.iter_child_nodes(fn)]
            while todo:
                node, in_comp = todo.pop()
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    continue
                in_comp = in_comp or isinstance(
                    node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
                )
                named = isinstance(node, ast.Name) and node.id == "_"
                if named and isinstance(node.ctx, ast.Store) and not in_comp:
                    stores.append(node.lineno)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_":
                    calls = True
                todo.extend((child, in_comp) for child in ast.iter_child_nodes(node))
            if stores and calls:
                bad.append(f"{path.name}:{stores[0]} in {fn.name}()")
    assert bad == [], f"rename the variable `_` in: {bad}"
