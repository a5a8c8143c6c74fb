"""The French catalogue: extract every message of the code, merge it into messages.po, check it.

    python -m app.i18n_catalogue update   # add new messages (empty), drop the ones gone, sort
    python -m app.i18n_catalogue check    # exit 1 listing what lacks a translation

``./dev i18n`` runs both. It is what ``pybabel extract -F babel.cfg -k N_ -o messages.pot app``
then ``pybabel update -i messages.pot -D messages -d app/locale --ignore-obsolete`` do, with
babel's own API and without an intermediate file. Messages are found in ``_("…")`` and
``N_("…")`` calls of the code (babel's Python extractor, adjacent literals joined) and of the
HTML templates (``{{ _("…") }}``, Jinja's extractor); a message with values is
written ``_("… {name} …").format(name=…)`` so that its translation can move ``{name}``.
"""

from __future__ import annotations

import io
import string
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

APP = Path(__file__).resolve().parent
LANGS = ("fr",)
_NOISY_HEADERS = tuple(
    f'"{name}:'
    for name in (
        "Project-Id-Version",
        "Report-Msgid-Bugs-To",
        "POT-Creation-Date",
        "PO-Revision-Date",
        "Last-Translator",
        "Language-Team",
        "Generated-By",
    )
)
HEADER = (
    "French translations of Porte-à-porte's messages (the code's English is the source).\n"
    "Update with `./dev i18n` (python -m app.i18n_catalogue update; see README, Languages)."
)


def po_path(lang: str) -> Path:
    """Where the catalogue of ``lang`` lives."""
    return APP / "locale" / lang / "LC_MESSAGES" / "messages.po"


def extract(root: Path = APP) -> Catalog:
    """Every message of the code under ``root`` (``_()`` and ``N_()``), with where it is used."""
    template = Catalog(project="porte-a-porte", fuzzy=False)
    found = extract_from_dir(
        str(root),
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")],
        keywords={**DEFAULT_KEYWORDS, "N_": None},
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        if not message:
            continue
        where = (f"app/{Path(filename).as_posix()}", lineno)
        template.add(message, locations=[where], auto_comments=comments, context=context)
    return template


def read(lang: str) -> Catalog:
    """The catalogue of ``lang`` as stored."""
    with po_path(lang).open("rb") as fh:
        return read_po(fh, locale=lang)


def update(lang: str, template: Catalog | None = None) -> tuple[int, int]:
    """Merge the code's messages into the catalogue of ``lang``: new ones are added empty (to
    translate), those no longer in the code are dropped. Returns (added, dropped)."""
    template = template or extract()
    catalog = read(lang)
    before = {m.id for m in catalog if m.id}
    catalog.update(template, no_fuzzy_matching=True)
    after = {m.id for m in catalog if m.id}
    write(lang, catalog)
    return len(after - before), len(before - after)


def write(lang: str, catalog: Catalog) -> None:
    """Store the catalogue of ``lang`` (sorted, locations without line numbers: an edit of the
    code changes the file only when its messages change)."""
    catalog.header_comment = "\n".join("# " + line for line in HEADER.splitlines())
    out = io.BytesIO()
    write_po(out, catalog, ignore_obsolete=True, sort_output=True, width=100, include_lineno=False)
    # Keep the header to what matters, so that an update changes only the messages.
    lines = out.getvalue().decode("utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(_NOISY_HEADERS)]
    po_path(lang).write_text("".join(kept), encoding="utf-8")


def fields(message: str) -> set[str]:
    """The ``{name}`` fields of a ``str.format`` template (``{{`` is a literal brace)."""
    try:
        return {name for _text, name, _spec, _conv in string.Formatter().parse(message) if name}
    except ValueError:  # unbalanced braces: a text never formatted
        return set()


def problems(template: Catalog, catalog: Catalog) -> list[str]:
    """What is wrong with ``catalog`` for the messages of ``template``: a message missing or
    untranslated, a fuzzy translation, or fields that differ from the message's."""
    out = []
    for message in template:
        if not message.id:
            continue
        where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
        found = catalog.get(message.id, message.context)
        if found is None or not found.string:
            out.append(f"no translation: {message.id!r} ({where})")
        elif found.fuzzy:
            out.append(f"fuzzy translation: {message.id!r} ({where})")
        elif fields(message.id) != fields(found.string):
            out.append(
                f"fields differ: {message.id!r} has {sorted(fields(message.id))}, the "
                f"translation {sorted(fields(found.string))} ({where})"
            )
    return out


def main(argv: Iterable[str] | None = None) -> int:
    """``update`` and/or ``check`` every catalogue."""
    args = list(argv if argv is not None else sys.argv[1:]) or ["update", "check"]
    template = extract()
    status = 0
    for lang in LANGS:
        if "update" in args:
            added, dropped = update(lang, template)
            print(f"{po_path(lang).relative_to(APP.parent)}: {added} new, {dropped} dropped")
        if "check" in args:
            wrong = problems(template, read(lang))
            for line in wrong:
                print(f"{lang}: {line}")
            if wrong:
                print(f"{lang}: {len(wrong)} message(s) to translate in {po_path(lang)}")
                status = 1
            else:
                print(f"{lang}: all {sum(1 for m in template if m.id)} messages translated")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
