"""Languages: French by default, English on request.

Messages are written in English in the code, wrapped in ``_()``; ``app/locale/fr/LC_MESSAGES/
messages.po`` gives their French form (``./dev i18n`` extracts them: app/i18n_catalogue.py and
the README, "Languages").
The language of the current request or command lives in a context variable: the HTTP middleware
sets it from ``Accept-Language`` (default ``PORTE_LANG``, ``fr``); the command line from
``--lang`` / ``PORTE_LANG``. ``_()`` translates at once, so call it where the message is built.
"""

from __future__ import annotations

import contextvars
from functools import cache
from importlib import resources

from app.authz import ADMIN, ANALYST, ORGANISER, VOLUNTEER

SUPPORTED = ("fr", "en")
DEFAULT = "fr"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("porte_lang", default=DEFAULT)


@cache
def _catalogue(lang: str) -> dict[str, str]:
    """msgid -> translation for one language (English is the source: no catalogue)."""
    if lang == "en":
        return {}
    path = resources.files("app") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    out: dict[str, str] = {}
    for message in catalog:
        if message.id and message.string and not message.fuzzy:
            key = message.id if isinstance(message.id, str) else message.id[0]
            value = message.string if isinstance(message.string, str) else message.string[0]
            out[key] = value
    return out


def current() -> str:
    """The language of the request or command being served."""
    return _current.get()


def set_language(lang: str | None) -> contextvars.Token[str]:
    """Use ``lang`` (``fr`` or ``en``; anything else falls back to French) from here on."""
    return _current.set(lang if lang in SUPPORTED else DEFAULT)


def reset_language(token: contextvars.Token[str]) -> None:
    """Undo ``set_language``."""
    _current.reset(token)


def _(message: str) -> str:
    """``message`` in the current language (the English text when no translation exists)."""
    lang = _current.get()
    if lang == "en":
        return message
    return _catalogue(lang).get(message, message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it: for texts defined once (a
    module's table) and translated with ``_()`` where they are shown, in the caller's language."""
    return message


_ROLES = {
    ADMIN: N_("admin"),
    ORGANISER: N_("organiser"),
    ANALYST: N_("analyst"),
    VOLUNTEER: N_("volunteer"),
}


def role_name(role: str) -> str:
    """A campaign role as people read it (``organiser`` -> ``organisateur`` in French)."""
    return _(_ROLES[role]) if role in _ROLES else role


def number(value: float, digits: int = 0) -> str:
    """A number as people of the current language write it (``12 345,6`` in French)."""
    from babel.numbers import format_decimal

    fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=fmt, locale=current())


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """The best supported language for an ``Accept-Language`` header (RFC 9110 weights)."""
    if not accept_language:
        return default
    best, best_q = default, -1.0
    for part in accept_language.split(","):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in SUPPORTED and q > best_q:
            best, best_q = lang, q
    return best
