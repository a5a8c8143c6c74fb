"""Request bodies about people: a supporter and their consent, GDPR rights, privacy.

The models say the shape of a body (types, sizes, no unknown field); the rules a supporter must
meet (consent given by the person, known purposes, dates not in the future, e-mail and phone
normalised) stay in ``app.services.people.supporters.validation.validate``, which the rows of a CSV
import go through too, so that the API and an import accept and refuse the same people.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_OBJECTION_IDS = 5000  # objections reverted by id in one request


class ConsentIn(BaseModel):
    """The consent a person gave (GDPR art. 7): every element is needed to prove it."""

    model_config = ConfigDict(extra="forbid")

    purposes: list[str] | str | None = Field(
        default=None, description="contact, mapping, ... (a list, or comma-separated)"
    )
    given_at: datetime | str | None = Field(
        default=None, description="ISO 8601, or dd/mm/yyyy [hh:mm]"
    )
    channel: str | None = None
    wording_version: str | None = None
    notice_version: str | None = None
    collected_by: str | None = None
    given_by_subject: bool | str | None = None


class _SupporterFields(BaseModel):
    """A supporter's personal fields, as a client sends them (checked by the service)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    notes: str | None = None
    last_contact_at: datetime | str | None = None


class SupporterIn(_SupporterFields):
    """One supporter with the consent they gave."""

    consent: ConsentIn | None = None


class SupporterPatch(_SupporterFields):
    """Rectify personal fields (``null`` clears one), fix the address text (it is geocoded
    again) or pick the door by hand (``address_id``). Only the fields sent change."""

    address_id: int | None = Field(default=None, ge=1)


class WithdrawalIn(BaseModel):
    """A withdrawal of consent: where it came from, and for which purposes (all if absent)."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = Field(default=None, description="kept as proof (first 50 characters)")
    purposes: list[str] | None = None


class PrivacyRequestResolve(BaseModel):
    """Close a pending objection: the door the admin picked, or none."""

    model_config = ConfigDict(extra="forbid")

    address_id: int | None = Field(default=None, ge=1)


class DoorObjectionRevert(BaseModel):
    """Which form objections to undo: their ids, and/or a network and a time window."""

    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_OBJECTION_IDS)
    origin: str | None = Field(
        default=None, max_length=50, description="a network as listed, e.g. 203.0.113.0/24"
    )
    since: datetime | None = None
    until: datetime | None = None


class PrivacyNoticeIn(BaseModel):
    """The controller and the contacts shown on the public privacy notice."""

    model_config = ConfigDict(extra="forbid")

    controller: str = Field(default="", max_length=500)
    contact_email: str = Field(default="", max_length=254)
    postal_address: str | None = Field(default=None, max_length=1000)
    dpo_contact: str | None = Field(default=None, max_length=1000)
    notice_version: str | None = Field(default=None, max_length=100)
