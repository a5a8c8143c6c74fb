"""Request bodies of the field: turfs drawn or cut, assignments, rounds, visits from phones.

There is no free-text note and no opinion field on a visit, on purpose: an opinion guessed at the
door is sensitive data (GDPR art. 9) the campaign has no basis to hold. Unknown fields are
refused (422).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.frenchdata import OUTCOME_LABELS, to_code
from app.i18n import N_, _
from app.schemas import Email, Flat

# ---------------------------------------------------------------- turfs and cuts
MIN_DOORS_PER_TURF, MAX_DOORS_PER_TURF = 5, 2000  # of an automatic cut, in doors
MAX_DISTRICTS = 200
Measure = Literal["households", "doors", "minutes"]
# The bounds of a turf's size in each measure (minutes: 15 min to 12 h of canvassing).
SIZE_BOUNDS: dict[str, tuple[float, float]] = {
    "doors": (MIN_DOORS_PER_TURF, MAX_DOORS_PER_TURF),
    "households": (MIN_DOORS_PER_TURF, 20_000),
    "minutes": (15, 720),
}
MEASURE_UNITS = {"doors": N_("doors"), "households": N_("households"), "minutes": N_("minutes")}


class TurfDraw(BaseModel):
    """A turf drawn by hand."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any]
    district_code: str | None = Field(default=None, max_length=40)


class CutRequest(BaseModel):
    """Cut options: the measure to balance and a turf's size in it.

    ``balance`` is what each turf holds about the same amount of: ``households`` (the default:
    in flats, the work is the households), ``doors``, or estimated ``minutes`` of canvassing
    (``seconds_per_door`` to reach each door plus ``seconds_per_household`` at it).
    ``doors_per_turf`` is the older shortcut for ``{"balance": "doors", "turf_size": N}``.
    """

    model_config = ConfigDict(extra="forbid")

    balance: Measure | None = None
    turf_size: float | None = Field(default=None, gt=0)
    doors_per_turf: int | None = Field(default=None, ge=MIN_DOORS_PER_TURF, le=MAX_DOORS_PER_TURF)
    seconds_per_door: float = Field(default=30, ge=0, le=3600)
    seconds_per_household: float = Field(default=90, ge=0, le=3600)
    replace: bool = False
    name_prefix: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _one_size(self) -> CutRequest:
        if self.doors_per_turf is not None:
            if self.turf_size is not None or self.balance not in (None, "doors"):
                raise ValueError(
                    _("give either 'doors_per_turf', or 'balance' with 'turf_size', not both")
                )
            self.balance, self.turf_size = "doors", float(self.doors_per_turf)
        if self.turf_size is None:
            raise ValueError(
                _(
                    "give the size of a turf: 'turf_size' (in households by default, or in the "
                    "measure named by 'balance': doors, households, minutes)"
                )
            )
        self.balance = self.balance or "households"
        low, high = SIZE_BOUNDS[self.balance]
        if not low <= self.turf_size <= high:
            raise ValueError(
                _("turf_size must be between {low:g} and {high:g} {unit} for a turf").format(
                    low=low, high=high, unit=_(MEASURE_UNITS[self.balance])
                )
            )
        return self

    def minutes(self, door_count: int, households: float) -> float:
        """Estimated minutes of canvassing for a turf."""
        return (self.seconds_per_door * door_count + self.seconds_per_household * households) / 60


class CutManyRequest(CutRequest):
    """Cut a list of districts, or a drawn area."""

    districts: list[str] | None = Field(default=None, min_length=1, max_length=MAX_DISTRICTS)
    area: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> CutManyRequest:
        if (self.districts is None) == (self.area is None):
            raise ValueError(_("give either 'districts' (a list of codes) or 'area' (a polygon)"))
        return self


# ---------------------------------------------------------------- assignments and rounds
class AssignmentCreate(BaseModel):
    """Give a turf to a volunteer account, to an existing invite, or to an invite made later."""

    model_config = ConfigDict(extra="forbid")

    turf_id: uuid.UUID
    volunteer_user_id: uuid.UUID | None = None
    volunteer_email: Email | None = None
    invite_id: uuid.UUID | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _check(self) -> AssignmentCreate:
        given = [self.volunteer_user_id, self.volunteer_email, self.invite_id]
        if sum(v is not None for v in given) > 1:
            raise ValueError(_("give one of volunteer_email, volunteer_user_id or invite_id"))
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError(_("ends_at must be after starts_at"))
        return self


class RoundCreate(BaseModel):
    """A new round."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)


# ---------------------------------------------------------------- visits
OutcomeCode = Literal["not_home", "talked", "refused", "moved", "no_access", "do_not_knock"]


def _outcome_code(value: object) -> object:
    """French words beside the codes ("absent" for not_home); anything else left to refuse."""
    if isinstance(value, str):
        return to_code(value, OUTCOME_LABELS) or value
    return value


Outcome = Annotated[OutcomeCode, BeforeValidator(_outcome_code)]
MAX_BATCH = 10_000  # doors in one batch of visits


class VisitIn(BaseModel):
    """One visit (or one action over several doors), as the phone records it."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    door: int | None = Field(default=None, ge=1)
    doors: list[int] | None = Field(default=None, min_length=1, max_length=MAX_BATCH)
    outcome: Outcome
    visited_at: AwareDatetime
    flat: Flat | None = Field(
        default=None, description="A flat of the building: 12, 3B, A-12 or one letter (A)."
    )
    assignment_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_target(self) -> VisitIn:
        if (self.door is None) == (self.doors is None):
            raise ValueError(_("give either 'door' (one door id) or 'doors' (a list of door ids)"))
        return self


class VisitBatch(BaseModel):
    """A batch of visits."""

    model_config = ConfigDict(extra="forbid")

    visits: list[VisitIn] = Field(min_length=1)


class BulkNotHome(BaseModel):
    """'Nobody home' for a whole building or street segment: one action, many doors."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    doors: list[int] = Field(min_length=1, max_length=MAX_BATCH)
    visited_at: AwareDatetime
    assignment_id: uuid.UUID | None = None
