"""SYNTHETIC consented supporters for the demo campaign, stored through the real HTTP API.

So that the review list, the aggregates (cells below k suppressed) and the GDPR rights can be
tried from the README, the demo imports a few hundred made-up supporters with
``POST /campaigns/{id}/supporters/import`` as ``admin@demo.local``: the same validation,
consent records (one per purpose), encryption, geocoding and audit as a real member file.

Nothing here is a real person: every name says "SYNTHÉTIQUE", e-mails are
``synthetique-NNN@demo.local``, phones start with 0699, the notes field says it, and the
consents are recorded as collected by "Démo (données SYNTHÉTIQUES)". The addresses are those of
the sample's synthetic doors of 92-13 (themselves made up): 70 % in eight polling stations of
Sceaux, whose counts reach k and are published, the rest thinly over the other stations, whose
counts stay suppressed. Deterministic (seeded), and run only when the campaign has no supporter
yet.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.commands.demo_field import DemoSetupError, _ok
from app.config import Settings
from app.db import make_engine
from app.i18n import _
from app.services.people.supporters.validation import CHANNELS, CONSENT_FIELDS_OF_ROW

SEED = 9213
COUNT = 360
DENSE_COMMUNE = "92071"  # Sceaux: most supporters live in a few of its polling stations,
DENSE_STATIONS = 8  # so that those reach k (published) while the others stay suppressed
DENSE_SHARE = 0.7
COLLECTED_BY = "Démo (données SYNTHÉTIQUES)"
FIRST = ["Camille", "Dominique", "Claude", "Alix", "Sacha", "Charlie", "Lou", "Noa", "Eden", "Maé"]
LAST = ["Martin", "Bernard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Michel"]
COLUMNS = [
    "name",
    "email",
    "phone",
    "housenumber",
    "street",
    "postcode",
    "city",
    "notes",
    "last_contact_at",
    *CONSENT_FIELDS_OF_ROW,
]


async def _doors(owner_url: str, rng: random.Random) -> list[Any]:
    """Synthetic doors of the sample: most in a few polling stations of Sceaux (published
    counts), the rest spread thinly over the others (suppressed cells)."""
    engine = make_engine(owner_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT a.id, a.numero, a.suffixe, a.nom_voie, a.code_postal, "
                        "a.nom_commune, a.code_insee, d.code AS district FROM address a "
                        "JOIN district d ON d.kind = 'bureau_de_vote' "
                        "AND ST_Covers(d.geom, a.geom) "
                        "WHERE a.source = 'synthetic' ORDER BY a.id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    if not rows:
        raise DemoSetupError(_("No synthetic doors loaded: load the sample first (porte demo)."))
    stations = sorted({r.district for r in rows if r.code_insee == DENSE_COMMUNE})[:DENSE_STATIONS]
    dense = [r for r in rows if r.district in stations] or rows
    sparse = [r for r in rows if r.district not in stations] or rows
    n_dense = round(COUNT * DENSE_SHARE)
    return rng.sample(dense, min(n_dense, len(dense))) + rng.sample(
        sparse, min(COUNT - n_dense, len(sparse))
    )


def synthetic_csv(doors: list[Any], rng: random.Random, now: datetime) -> bytes:
    """The member file of the synthetic supporters (UTF-8 CSV with consent columns)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    for n, door in enumerate(doors, start=1):
        purposes = ["contact"]
        if rng.random() < 0.85:
            purposes.append("mapping")
        if rng.random() < 0.3:
            purposes.append("volunteering")
        if rng.random() < 0.5:
            purposes.append("newsletter")
        kind = rng.random()
        number = f"{door.numero}{door.suffixe or ''}" if door.numero else ""
        street = door.nom_voie or ""
        if 0.80 <= kind < 0.90:
            number = ""  # street only: placed at no door, listed for review
        elif 0.90 <= kind < 0.95:
            street = street.replace("carreau", "carau", 1)  # a typo: a suggestion to review
        elif kind >= 0.95:
            number = street = ""  # no address at all
        given = now - timedelta(days=rng.randint(1, 700), minutes=rng.randint(0, 1440))
        contact = given + timedelta(days=rng.randint(0, max(0, (now - given).days - 1)))
        w.writerow(
            {
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {n:03d} (SYNTHÉTIQUE)",
                "email": f"synthetique-{n:03d}@demo.local",
                "phone": f"0699{n:06d}" if rng.random() < 0.4 else "",
                "housenumber": number,
                "street": street,
                "postcode": (door.code_postal or "") if street else "",
                "city": (door.nom_commune or "") if street else "",
                "notes": "Donnée SYNTHÉTIQUE de démonstration : personne imaginaire.",
                "last_contact_at": contact.isoformat(timespec="seconds"),
                "consent_given_at": given.isoformat(timespec="seconds"),
                "consent_purposes": "|".join(purposes),
                "consent_channel": rng.choice(CHANNELS),
                "consent_wording_version": "demo-2026-01",
                "consent_notice_version": "demo-1",
                "consent_collected_by": COLLECTED_BY,
                "consent_given_by_subject": "true",
            }
        )
    return out.getvalue().encode("utf-8")


async def seed_supporters(
    settings: Settings, campaign_id: str, password: str, *, client: httpx.AsyncClient
) -> dict[str, Any]:
    """Import the synthetic supporters once (a campaign that has some keeps them)."""
    owner_url = settings.owner_database_url or ""
    engine = make_engine(owner_url)
    try:
        async with engine.connect() as conn:
            existing = (
                await conn.execute(
                    text("SELECT count(*) FROM supporter WHERE campaign_id = :c"),
                    {"c": campaign_id},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    if existing:
        return {"supporters": existing, "supporters_created": 0}
    rng = random.Random(SEED)
    doors = await _doors(owner_url, rng)
    body = synthetic_csv(doors, rng, datetime.now(UTC))
    token = _ok(
        await client.post(
            "/auth/token", data={"username": "admin@demo.local", "password": password}
        ),
        _("Signing in as admin@demo.local"),
    )["access_token"]
    report = _ok(
        await client.post(
            f"/campaigns/{campaign_id}/supporters/import",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("supporters-SYNTHETIQUES.csv", body, "text/csv")},
        ),
        _("Importing the synthetic supporters"),
    )
    return {"supporters": len(doors), "supporters_created": len(doors), "import": report}
