"""Encryption at rest of personal data (AES-256-GCM) and keyed hashes for de-duplication.

Each encrypted value is ``version byte || 12-byte random nonce || ciphertext+tag``. The key id is
stored per row (``key_id`` column) so keys can be rotated in the background (`porte keys rotate`).
The associated data binds a ciphertext to its campaign, row and column: a value copied into another
row or column fails to decrypt.

The HMAC of a normalised e-mail or phone number (keyed with ``PORTE_HMAC_KEY`` and the campaign id)
finds duplicates without decrypting anything; two campaigns get unrelated hashes for one person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import Settings
from app.errors import InvalidInput, PorteError
from app.i18n import N_, _

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

VERSION = b"\x01"
NONCE = 12


class KeyError_(PorteError):
    """Encryption keys are missing or wrong (a configuration problem, 500)."""

    status = 500
    title = N_("Encryption keys not configured")


class DecryptionFailed(Exception):
    """A value could not be decrypted with the given key (wrong key, or tampered data)."""


def generate_key() -> str:
    """A new random 256-bit key, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _decode_key(kid: str, b64: str) -> bytes:
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise KeyError_(
            _("Data key {kid!r} in PORTE_DATA_KEYS is not valid base64.").format(kid=kid)
        ) from exc
    if len(raw) != 32:
        raise KeyError_(
            _("Data key {kid!r} must be 32 bytes (AES-256), got {n}.").format(kid=kid, n=len(raw))
        )
    return raw


def aad(campaign_id: uuid.UUID | str, row_id: uuid.UUID | str, column: str) -> bytes:
    """Associated data that binds a ciphertext to one campaign, row and column."""
    return f"{campaign_id}|{row_id}|{column}".encode()


TOTP_COLUMN = "totp_secret"  # the column name bound into an account's encrypted TOTP secret


def account_aad(user_id: uuid.UUID | str, column: str) -> bytes:
    """Associated data that binds a ciphertext to one account (``app_user`` row) and column."""
    return f"app_user|{user_id}|{column}".encode()


@dataclass
class Cipher:
    """AES-GCM with several keys by id; new values use ``current``."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        """The keys of ``PORTE_DATA_KEYS``; refuse clearly when they are missing."""
        kmap = settings.data_key_map
        if not kmap or not settings.data_key_id:
            raise KeyError_(
                _(
                    "Personal data cannot be stored or read: PORTE_DATA_KEYS and "
                    "PORTE_DATA_KEY_ID are not set. Generate them with `porte keys generate` and "
                    "restart the service."
                )
            )
        if settings.data_key_id not in kmap:
            raise KeyError_(
                _(
                    "PORTE_DATA_KEY_ID is {kid!r} but PORTE_DATA_KEYS has no such key (it has "
                    "{kids}). Add the key or fix the id."
                ).format(kid=settings.data_key_id, kids=", ".join(sorted(kmap)))
            )
        return cls({k: _decode_key(k, v) for k, v in kmap.items()}, settings.data_key_id)

    def encrypt(self, value: str | None, *, ad: bytes) -> bytes | None:
        """Encrypt a text with the current key (None stays None)."""
        if value is None:
            return None
        nonce = os.urandom(NONCE)
        ct = AESGCM(self.keys[self.current]).encrypt(nonce, value.encode("utf-8"), ad)
        return VERSION + nonce + ct

    def decrypt(self, blob: bytes | None, *, key_id: str, ad: bytes) -> str | None:
        """Decrypt a value written with key ``key_id``; DecryptionFailed when it does not open."""
        if blob is None:
            return None
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionFailed(
                _(
                    "key {kid!r} is not in PORTE_DATA_KEYS: keep old keys until "
                    "`porte keys rotate` has finished"
                ).format(kid=key_id)
            )
        blob = bytes(blob)
        if blob[:1] != VERSION:
            raise DecryptionFailed(_("unknown ciphertext version"))
        try:
            return AESGCM(key).decrypt(blob[1 : 1 + NONCE], blob[1 + NONCE :], ad).decode("utf-8")
        except InvalidTag as exc:
            raise DecryptionFailed(_("wrong key or tampered value")) from exc


# ---------------------------------------------------------------- normalisation + HMAC
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def normalise_email(value: str, field: str = "email") -> str:
    """Trimmed, lower-case e-mail without inner spaces; InvalidInput when it is not an e-mail."""
    v = unicodedata.normalize("NFKC", value).strip().lower()
    v = re.sub(r"\s+", "", v)
    if not v or len(v) > 254 or not EMAIL_RE.match(v) or len(v.split("@")[0]) > 64:
        raise InvalidInput(
            _("is not a valid e-mail address (expected name@domain.tld)"), field=field
        )
    return v


def normalise_phone(value: str, field: str = "phone") -> str:
    """E.164 form of a French or international number; InvalidInput when malformed."""
    v = unicodedata.normalize("NFKC", value).strip()
    if re.search(r"[^\d\s.+()\-/]", v):
        raise InvalidInput(
            _("is not a phone number (only digits, spaces, dots, dashes and a leading + allowed)"),
            field=field,
        )
    digits = re.sub(r"\D", "", v)
    if v.startswith("+"):
        e164 = "+" + digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif len(digits) == 10 and digits.startswith("0") and digits[1] != "0":
        e164 = "+33" + digits[1:]
    else:
        raise InvalidInput(
            _(
                "is not a phone number: expected 10 digits starting with 0 (e.g. 06 12 34 56 78) "
                "or an international number starting with +"
            ),
            field=field,
        )
    if e164.startswith("+330"):
        e164 = "+33" + e164[4:]
    if not 9 <= len(e164) <= 16 or (e164.startswith("+33") and len(e164) != 12):
        raise InvalidInput(_("has the wrong number of digits for a phone number"), field=field)
    return e164


@dataclass
class Hasher:
    """HMAC-SHA256 of normalised identifiers, per campaign."""

    key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Hasher:
        """The HMAC key of ``PORTE_HMAC_KEY``."""
        if not settings.hmac_key:
            raise KeyError_(
                _(
                    "PORTE_HMAC_KEY is not set: duplicates cannot be detected. Generate one with "
                    "`porte keys generate`."
                )
            )
        return cls(settings.hmac_key.encode())

    def digest(self, campaign_id: uuid.UUID | str, kind: str, normalised: str) -> bytes:
        """Keyed hash of one normalised identifier (``kind`` is 'email' or 'phone')."""
        msg = f"{campaign_id}|{kind}|{normalised}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).digest()


# ---------------------------------------------------------------- rotation
@dataclass(frozen=True)
class _Encrypted:
    """Where ciphertexts live: a table, its key columns, the key-id column, and for each
    encrypted column the associated data of a row (see ``aad`` / ``account_aad``)."""

    table: str
    ids: tuple[str, ...]
    key_col: str
    columns: dict[str, Callable[[Any], bytes]]
    where: str  # which rows hold ciphertexts


# The personal columns, then the exact door (id and point, migration 0013): one key id per row.
_SUPPORTER_FIELDS = ("name", "email", "phone", "address", "notes", "address_id", "point")
SUPPORTERS = _Encrypted(
    "supporter",
    ("campaign_id", "id"),
    "key_id",
    {
        f"{f}_enc": (lambda r, f=f: aad(r.campaign_id, r.id, f))  # type: ignore[misc]
        for f in _SUPPORTER_FIELDS
    },
    "key_id IS NOT NULL",
)
PRIVACY_REQUESTS = _Encrypted(
    "privacy_request",
    ("campaign_id", "id"),
    "key_id",
    {"address_enc": lambda r: aad(r.campaign_id, r.id, "address")},
    "address_enc IS NOT NULL",
)
ACCOUNT_SECRETS = _Encrypted(
    "app_user",
    ("id",),
    "totp_key_id",
    {"totp_secret_enc": lambda r: account_aad(r.id, TOTP_COLUMN)},
    "totp_key_id IS NOT NULL",
)


async def _reencrypt(
    engine: AsyncEngine, settings: Settings, where: _Encrypted, *, batch: int, progress=None
) -> int:
    """Re-encrypt ``where``'s rows that are not under the current key, batch by batch (each its
    own short transaction, rows locked with SKIP LOCKED so the service keeps running); a row
    whose key changed meanwhile is left alone. Returns the rows done."""
    from sqlalchemy import text

    cipher = Cipher.from_settings(settings)
    cols = list(where.columns)
    select = text(
        f"SELECT {', '.join((*where.ids, where.key_col, *cols))} FROM {where.table} "
        f"WHERE {where.where} AND {where.key_col} <> :k LIMIT :n FOR UPDATE SKIP LOCKED"
    )
    update = text(
        f"UPDATE {where.table} SET {where.key_col} = :k, "
        + ", ".join(f"{c} = :{c}" for c in cols)
        + " WHERE "
        + " AND ".join(f"{i} = :{i}" for i in where.ids)
        + f" AND {where.key_col} = :old"
    )
    done = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(select, {"k": cipher.current, "n": batch})).all()
            for r in rows:
                old = getattr(r, where.key_col)
                new = {}
                for c, ad_of in where.columns.items():
                    ad = ad_of(r)
                    new[c] = cipher.encrypt(cipher.decrypt(getattr(r, c), key_id=old, ad=ad), ad=ad)
                ids = {i: getattr(r, i) for i in where.ids}
                await conn.execute(update, {"k": cipher.current, "old": old, **ids, **new})
        done += len(rows)
        if progress and rows:
            progress(done)
        if not rows:
            return done


async def rotate(
    engine: AsyncEngine, settings: Settings, *, batch: int = 500, progress=None
) -> int:
    """Re-encrypt supporters' personal data (their exact door included) and privacy requests'
    typed addresses under the current key (see ``_reencrypt``), on the owner's ``engine``
    (``app.db.owner_engine``). Returns rows done."""
    done = await _reencrypt(engine, settings, SUPPORTERS, batch=batch, progress=progress)

    def more(d: int) -> None:
        if progress:
            progress(done + d)

    more_done = await _reencrypt(engine, settings, PRIVACY_REQUESTS, batch=batch, progress=more)
    return done + more_done


async def rotate_account_secrets(
    engine: AsyncEngine, settings: Settings, *, batch: int = 500, progress=None
) -> int:
    """Re-encrypt accounts' TOTP secrets under the current key (see ``_reencrypt``)."""
    return await _reencrypt(engine, settings, ACCOUNT_SECRETS, batch=batch, progress=progress)
