"""What a ranking is computed from: the election, our side, the swing's reference, the round.

Resolved once per snapshot (``snapshot.py``), from the request, then the campaign's saved
settings, then defaults, and stored with it; each factor the ranking cannot compute is given a
reason here (``absent``), so that a ranking always answers and says what it left out, and what to
do about it. Reasons are stored as their English message and its values (``because``) and put
in the reader's language when shown (``shown``): one snapshot serves French and English readers.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.errors import InvalidInput
from app.i18n import N_, _
from app.services.ranking import sql
from app.services.ranking.factors import parse_side

Conn = AsyncConnection | AsyncSession

ELECTION_FACTORS = ("registered", "abstention_rate", "side_score", "closeness", "swing")
SIDE_FACTORS = ("side_score", "closeness", "swing")

# A reason as stored: the English message (marked N_ where written) and its values.
Reason = str | list


def because(message: str, **values: Any) -> list:
    """A reason to store with the snapshot; ``shown`` translates it for each reader."""
    return [message, values]


def shown(reason: Reason | None) -> str | None:
    """A stored reason in the current language (a plain string: a message without values)."""
    if reason is None:
        return None
    message, values = (reason, {}) if isinstance(reason, str) else reason
    try:
        return _(message).format(**values)
    except (KeyError, IndexError, ValueError):  # a text stored before reasons had values
        return _(message)


NO_ROUND = N_(
    "no canvass round started yet: it counts once the first round starts (POST "
    "/campaigns/{cid}/rounds)"
)


@dataclass
class Inputs:
    """What the ranking uses, and why the rest is left out (stored as JSON in the snapshot)."""

    election_id: int | None = None
    election_name: str | None = None
    election_reason: Reason | None = None
    side: list[str] | None = None
    side_text: str | None = None
    swing_from_id: int | None = None
    swing_from_name: str | None = None
    swing_reason: Reason | None = None
    has_round: bool = False
    round_number: int | None = None
    absent: dict[str, Reason] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inputs:
        """Back from ``as_json``."""
        return cls(**data)


_ELECTION_BY = text(
    "SELECT id, name FROM election WHERE id::text = :e OR name = :e ORDER BY id LIMIT 1"
)
_ELECTION_ID = text("SELECT id, name FROM election WHERE id = :e")
# The latest loaded election with a result in the territory (a national database holds results of
# other places too).
_LATEST_HERE = text(
    "SELECT e.id, e.name FROM election e WHERE EXISTS ("
    "  SELECT 1 FROM campaign_district cd JOIN election_result r"
    "    ON r.election_id = e.id AND r.district_code = cd.district_code"
    "  WHERE cd.campaign_id = :c) "
    "ORDER BY e.loaded_at DESC, e.id DESC LIMIT 1"
)
_RESULTS_HERE = text(
    "SELECT EXISTS (SELECT 1 FROM campaign_district cd JOIN election_result r "
    "ON r.election_id = :e AND r.district_code = cd.district_code WHERE cd.campaign_id = :c)"
)
_TERRITORY_SIZE = text("SELECT count(*) FROM campaign_district WHERE campaign_id = :c")
_ROUND = text("SELECT max(number) FROM canvass_round WHERE campaign_id = :c")
_ELECTION_NAMES = text("SELECT name FROM election ORDER BY id")


async def election_by(conn: Conn, election: str, field_name: str) -> Any:
    """The loaded election called or numbered ``election``; 422 naming ``field_name`` if none."""
    row = (await conn.execute(_ELECTION_BY, {"e": str(election)})).first()
    if row is None:
        names = (await conn.execute(_ELECTION_NAMES)).scalars()
        raise InvalidInput(
            _(
                "No loaded election is called or numbered {election!r}. Loaded: {names}. GET "
                "/elections lists them with where each ran."
            ).format(election=election, names=", ".join(names) or _("none")),
            field=field_name,
        )
    return row


async def _choose_election(
    conn: Conn, campaign_id: uuid.UUID, inp: Inputs, election: str | None, saved: Any
) -> None:
    """The request's election, else the campaign's, else the latest with results here."""
    row = None
    if election:
        row = await election_by(conn, election, "election")
        inp.election_reason = N_("chosen in the request")
    elif saved is not None:
        row = (await conn.execute(_ELECTION_ID, {"e": saved})).first()
        inp.election_reason = N_("campaign setting")
    if row is None:
        row = (await conn.execute(_LATEST_HERE, {"c": campaign_id})).first()
        inp.election_reason = N_("latest loaded election with results in this territory")
    if row is not None:
        inp.election_id, inp.election_name = row.id, row.name


async def _resolve_swing(
    conn: Conn, campaign_id: uuid.UUID, inp: Inputs, swing_from: str | None, saved: Any
) -> None:
    """Choose the swing's reference election (request, campaign setting, else default)."""
    binds = {"chosen": inp.election_id, "side": inp.side, "c": campaign_id}
    side = inp.side_text
    if swing_from:
        ref = await election_by(conn, swing_from, "swing_from")
        if ref.id == inp.election_id:
            raise InvalidInput(
                _(
                    "swing_from {swing_from!r} is the chosen election itself: choose an "
                    "earlier one."
                ).format(swing_from=swing_from),
                field="swing_from",
            )
        why, only = N_("chosen in the request"), ref.id
    elif saved not in (None, inp.election_id):
        ref = (await conn.execute(_ELECTION_ID, {"e": saved})).first()
        why, only = N_("campaign setting"), ref.id if ref else None
    else:
        ref, why, only = None, None, None
    statement = sql.named("ranking_swing_reference")
    if ref is not None:
        found = (await conn.execute(statement, {**binds, "only": only})).first()
        if found is None:
            inp.absent["swing"] = because(
                N_(
                    "the side {side!r} has no candidate in {election} (the swing's reference "
                    "election) in this territory: choose another with ?swing_from= (GET "
                    "/elections/{{id}}/sides lists each election's sides)"
                ),
                side=side,
                election=ref.name,
            )
            return
        inp.swing_from_id, inp.swing_from_name, inp.swing_reason = found.id, found.name, why
        return
    found = (await conn.execute(statement, {**binds, "only": None})).first()
    if found is None:
        inp.absent["swing"] = because(
            N_(
                "no other loaded election has a candidate of the side {side!r} in this "
                "territory: import the results of an earlier election (porte import results "
                "FILE), or choose one with ?swing_from="
            ),
            side=side,
        )
        return
    inp.swing_from_id, inp.swing_from_name = found.id, found.name
    inp.swing_reason = N_("most recent other loaded election with the side (none chosen)")


async def _no_election_data(conn: Conn, campaign_id: uuid.UUID, inp: Inputs) -> Reason | None:
    """Why the election factors have no data (the territory has no district, no election is
    loaded or chosen, the chosen one has no result here), or None when they have."""
    districts = (await conn.execute(_TERRITORY_SIZE, {"c": campaign_id})).scalar_one()
    if not districts:
        return because(
            N_(
                "the campaign's territory has no district: import the polling-station contours "
                "of its communes (porte import districts FILE), or change the territory (PUT "
                "/campaigns/{cid}/territory)"
            ),
            cid=str(campaign_id),
        )
    if inp.election_id is None:
        names = list((await conn.execute(_ELECTION_NAMES)).scalars())
        return (
            because(
                N_(
                    "no loaded election has results for this territory's districts (loaded: "
                    "{names}): import the results of its communes with porte import results FILE "
                    "(docs/data.md)"
                ),
                names=", ".join(names),
            )
            if names
            else N_(
                "no election loaded: import the results of an election with porte import "
                "results FILE (docs/data.md)"
            )
        )
    if not (
        await conn.execute(_RESULTS_HERE, {"e": inp.election_id, "c": campaign_id})
    ).scalar_one():
        return because(
            N_(
                "the election {name} has no result for this territory's districts: choose "
                "another with ?election= (GET /elections says where each ran), or import its "
                "results for these communes (porte import results FILE)"
            ),
            name=inp.election_name,
        )
    return None


async def resolve(
    conn: Conn,
    campaign_id: uuid.UUID,
    *,
    election: str | None,
    side: str | None,
    swing_from: str | None,
    state: Any,
) -> Inputs:
    """Choose the election, side and swing reference; say which factors have no data (and why).

    ``state`` is the campaign's row of ``sql.STATE`` (saved settings, the campaign's side).
    """
    inp = Inputs()
    await _choose_election(conn, campaign_id, inp, election, state.election_id)
    side_text = side or state.side or state.campaign_side
    inp.side, inp.side_text = parse_side(side_text), side_text or None

    reason = await _no_election_data(conn, campaign_id, inp)
    if reason is not None:
        for name in ELECTION_FACTORS:
            inp.absent[name] = reason
    elif inp.side is None:
        for name in SIDE_FACTORS:
            inp.absent[name] = N_(
                'no side chosen: set it with PUT /campaigns/{{id}}/weights {{"side": '
                '"Ensemble"}} or ?side= (a nuance code, a party, list or candidate name; GET '
                "/elections/{{id}}/sides lists them)"
            )
    else:
        await _resolve_swing(conn, campaign_id, inp, swing_from, state.swing_from_id)
    if state.supporter_cells != "district":
        inp.absent["supporters"] = N_(
            "this campaign publishes its supporter counts per 200 m tile (campaign setting "
            "supporter_cells): a second set of counts per district would let small cells be "
            "worked out by subtraction"
        )
    inp.round_number = (await conn.execute(_ROUND, {"c": campaign_id})).scalar()
    inp.has_round = inp.round_number is not None
    if not inp.has_round:
        inp.absent["coverage"] = because(NO_ROUND, cid=str(campaign_id))
    return inp
