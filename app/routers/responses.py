"""How routes answer: the one way every router commits and responds.

**Commit before the response.** The request's transaction is the ``Session`` dependency of
``app.security`` (under every campaign scope), declared with ``Depends(..., scope="function")``:
FastAPI closes it (commit, or rollback on an error) as soon as the route function has returned,
*before* the response is sent. So "201 created" means stored, a phone never reads an assignment
that is not visible yet, and a commit that fails (a deferred constraint, a lost connection)
becomes the error answer rather than a success already on its way. This is the only mechanism:
routes never call ``commit()`` themselves. It was chosen over an explicit ``committed(ctx, data)``
helper because a dependency cannot be forgotten in a new route that writes, and it covers the
routes that answer with plain data as well. It needs FastAPI >= 0.121 (pinned in
pyproject.toml); the default scope, ``"request"``, would commit after the response is sent.

**One response style.** A route returns its data (a dict, a list, or a model of ``app.schemas``)
and says so by its return annotation or ``response_model``; FastAPI serialises it (UUIDs and
datetimes as strings). The status is the decorator's
``status_code`` (a route whose status depends on its input, a dry run, sets
``response.status_code``); an empty answer is ``status_code=204`` with nothing returned. A
``Response`` is built only for what is not plain JSON: tiles, files, HTML, CSV, and JSON under a
media type of its own (``json_as``: GeoJSON, OGC API documents, a download).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def json_as(
    body: Any,
    media_type: str,
    *,
    headers: Mapping[str, str] | None = None,
    status: int = 200,
) -> JSONResponse:
    """``body`` as JSON under ``media_type`` (e.g. ``application/geo+json``) with ``headers``."""
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=media_type, headers=headers
    )
