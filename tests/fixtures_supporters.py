"""Helpers for supporter tests: consent payloads and placed supporters (synthetic test people)."""

from __future__ import annotations

from sqlalchemy import text

CONSENT = {
    "purposes": ["contact", "mapping"],
    "given_at": "2026-01-10T18:00:00+01:00",
    "channel": "door",
    "wording_version": "w-2026-01",
    "notice_version": "n-2026-01",
    "collected_by": "Stand du marché (test)",
    "given_by_subject": True,
}


def person(i: int, **over) -> dict:
    """A made-up supporter (not a real person)."""
    body = {
        "name": f"Test Person {i}",
        "email": f"person{i}@example.test",
        "phone": f"06 00 00 {i // 100:02d} {i % 100:02d}",
        "notes": "met at the market",
        "consent": dict(CONSENT),
    }
    body.update(over)
    return body


async def doors_in_one_district(owner_engine, n: int) -> tuple[str, list[int]]:
    """A polling station with at least ``n`` loaded doors, and ``n`` of its doors."""
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT d.code, array_agg(a.id ORDER BY a.id) AS ids FROM district d "
                    "JOIN address a ON ST_Covers(d.geom, a.geom) WHERE d.kind = 'bureau_de_vote' "
                    "GROUP BY d.code HAVING count(*) >= :n ORDER BY d.code LIMIT 1"
                ),
                {"n": n},
            )
        ).one()
    return rows.code, list(rows.ids[:n])
