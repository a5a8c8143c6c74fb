"""Secrets of a server that was given none: generated once, kept next to the private cluster.

Outside ``test`` mode no public secret is ever used:

- ``production``: every secret comes from the environment and ``check_secrets`` refuses to start
  without one (or with a short, public or malformed one), so no request can fail later for want
  of a key;
- ``development`` and ``demo``: a secret missing from the environment is read from the local
  secrets file (``PORTE_SECRETS_FILE``, by default ``porte-secrets.json`` in the private cluster's
  directory, mode 0600), which is created with fresh random values (``secrets``) on first start.
  A value given in the environment always wins, and is checked the same way as in production.

The file holds the signing key of tokens and invite links (``secret_key``), the data keys that
encrypt supporters' personal data and two-factor secrets (``data_keys``, ``data_key_id``) and the
key of the de-duplication hashes (``hmac_key``). Losing it makes the encrypted data unreadable:
keep it with the cluster (it is in the same directory), and back both up together.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.i18n import _

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("porte")

MIN_SECRET_BYTES = 32
FILE_NAME = "porte-secrets.json"
# Settings fields kept in the file (data_keys is stored as the JSON text the setting takes).
FIELDS = ("secret_key", "data_keys", "data_key_id", "hmac_key")


class SecretsRefused(SystemExit):
    """The service must not start with these secrets; the message says what to change."""


@dataclass(frozen=True)
class LocalSecrets:
    """What the local secrets file gave a process: where it is, which values, whether new."""

    path: Path
    used: tuple[str, ...]  # settings taken from the file (the others came from the environment)
    created: bool  # the file was written by this process (first start)


def secrets_path(settings: Settings) -> Path:
    """Where the local secrets live: ``PORTE_SECRETS_FILE`` or next to the private cluster."""
    if settings.secrets_file is not None:
        return Path(settings.secrets_file)
    return Path(settings.db_dir) / FILE_NAME


def _generate() -> dict[str, str]:
    kid = datetime.now(UTC).strftime("local%Y%m%d%H%M%S")
    return {
        "secret_key": secrets.token_urlsafe(48),
        "data_keys": json.dumps({kid: base64.b64encode(secrets.token_bytes(32)).decode()}),
        "data_key_id": kid,
        "hmac_key": secrets.token_urlsafe(48),
    }


def _read_or_create(path: Path) -> tuple[dict[str, str], bool]:
    """The file's values, creating the file (mode 0600, under a lock) when absent or partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # several workers may start at once
        values: dict[str, str] = {}
        if path.exists():
            if path.stat().st_mode & 0o077:  # copied around with looser rights: tighten them
                log.warning("%s was readable by others; set to mode 0600", path)
                os.chmod(path, 0o600)
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                loaded = None
            if not isinstance(loaded, dict):
                raise SecretsRefused(
                    _("{path} is not a JSON object: restore it from a backup.").format(path=path)
                )
            values = loaded
        missing = [f for f in FIELDS if not values.get(f)]
        if not missing:
            return values, False
        fresh = _generate()
        partial = ("data_keys" in missing) != ("data_key_id" in missing)
        if partial:
            raise SecretsRefused(
                _(
                    "{path} has only part of the data keys (data_keys and data_key_id go "
                    "together): restore the file from a backup."
                ).format(path=path)
            )
        values.update({f: fresh[f] for f in missing})
        tmp = path.with_name(path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(tfd, "w", encoding="utf-8") as fh:
            json.dump(values, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return values, True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _from_environment(settings: Settings, field: str) -> bool:
    """Whether ``field`` was given (environment, .env or explicitly), not a built-in default."""
    from app.config import DEFAULT_SECRET

    value = getattr(settings, field)
    if field == "secret_key":
        return value != DEFAULT_SECRET
    return bool(value)


def with_local_secrets(settings: Settings) -> Settings:
    """``settings`` with every secret the environment left out taken from the local file.

    Only in ``development`` and ``demo`` modes; other modes are returned unchanged (``test``
    passes its own secrets, ``production`` must be given them). Idempotent.
    """
    if settings.mode not in ("development", "demo") or settings.local_secrets is not None:
        return settings
    wanted = [f for f in FIELDS if not _from_environment(settings, f)]
    # The data keys are one setting in two parts: both from the environment, or both from the file.
    if ("data_keys" in wanted) != ("data_key_id" in wanted):
        wanted = [f for f in wanted if f not in ("data_keys", "data_key_id")]
    path = secrets_path(settings)
    if not wanted:
        return settings
    try:
        values, created = _read_or_create(path)
    except OSError as exc:
        raise SecretsRefused(
            _(
                "The {mode} mode keeps the secrets it generates in {path}, which cannot be "
                "written or read ({reason}). Set PORTE_SECRETS_FILE to a place this user can "
                "write, or give every secret in the environment (`porte keys generate`)."
            ).format(mode=settings.mode, path=path, reason=exc.strerror or exc)
        ) from exc
    update = {f: values[f] for f in wanted}
    out = settings.model_copy(update=update)
    out.__dict__.pop("data_key_map", None)  # cached from the old value
    out.local_secrets = LocalSecrets(path=path, used=tuple(wanted), created=created)
    return out


def _check_data_keys(settings: Settings) -> str | None:
    if not settings.data_keys or not settings.data_key_id:
        return _("PORTE_DATA_KEYS / PORTE_DATA_KEY_ID are not set")
    try:
        kmap = json.loads(settings.data_keys)
    except json.JSONDecodeError:
        kmap = None
    if not isinstance(kmap, dict) or not kmap:
        return _('PORTE_DATA_KEYS must be a JSON object {"key id": "base64 of 32 bytes"}')
    for kid, b64 in kmap.items():
        try:
            raw = base64.b64decode(str(b64), validate=True)
        except (binascii.Error, ValueError):
            return _("data key {kid} in PORTE_DATA_KEYS is not base64").format(kid=repr(kid))
        if len(raw) != 32:
            return _("data key {kid} in PORTE_DATA_KEYS is {n} bytes, not 32 (AES-256)").format(
                kid=repr(kid), n=len(raw)
            )
    if settings.data_key_id not in kmap:
        return _("PORTE_DATA_KEY_ID {kid} names no key of PORTE_DATA_KEYS").format(
            kid=repr(settings.data_key_id)
        )
    return None


def problems(settings: Settings) -> list[str]:
    """What is wrong with the secrets (and, in production, the public address) of a service
    that is about to start (any mode but test)."""
    from app.config import DEFAULT_SECRET

    if settings.mode == "test":
        return []
    out = []
    short = _("{name} is shorter than {n} bytes")
    if settings.secret_key == DEFAULT_SECRET:
        out.append(_("PORTE_SECRET_KEY is the public default"))
    elif len(settings.secret_key.encode()) < MIN_SECRET_BYTES:
        out.append(short.format(name="PORTE_SECRET_KEY", n=MIN_SECRET_BYTES))
    if not settings.hmac_key:
        out.append(_("PORTE_HMAC_KEY is not set"))
    elif len(settings.hmac_key.encode()) < MIN_SECRET_BYTES:
        out.append(short.format(name="PORTE_HMAC_KEY", n=MIN_SECRET_BYTES))
    keys = _check_data_keys(settings)
    if keys:
        out.append(keys)
    if settings.mode == "production" and not settings.public_base_url:
        out.append(
            _(
                "PORTE_PUBLIC_BASE_URL is not set (the https address phones open invite links "
                "on, e.g. https://porte.example.org)"
            )
        )
    return out


def check_secrets(settings: Settings) -> None:
    """Refuse to start (``SecretsRefused``, a SystemExit) with missing, public or weak secrets."""
    found = problems(settings)
    if not found:
        return
    if settings.mode == "production":
        hint = _(
            "Generate them with `porte keys generate` and set them in the service's environment "
            "(production never generates secrets by itself)."
        )
    else:
        hint = _(
            "Remove the value from the environment to use the generated development secrets "
            "({path}), or give one of at least {n} bytes (`porte keys generate`)."
        ).format(path=secrets_path(settings), n=MIN_SECRET_BYTES)
    raise SecretsRefused(
        _("Refusing to start in {mode} mode: {problems}.").format(
            mode=settings.mode, problems="; ".join(found)
        )
        + " "
        + hint
    )


_announced: set[Path] = set()


def announce_once(settings: Settings, emit) -> None:  # emit: Callable[[str], None]
    """Say where the development secrets are, once per process (the command line and the app it
    starts, or the apps a demo runs in-process, would otherwise repeat it)."""
    info = settings.local_secrets
    if info is None or info.path in _announced:
        return
    _announced.add(info.path)
    message = start_message(settings)
    if message:
        emit(message)


def start_message(settings: Settings) -> str | None:
    """The warning a development or demo service logs at start about its generated secrets."""
    info = settings.local_secrets
    if info is None:
        return None
    if info.created:
        text = _(
            "{mode} mode: secrets not given in the environment ({names}) were generated now and "
            "stored in {path} (mode 0600)."
        )
    else:
        text = _(
            "{mode} mode: secrets not given in the environment ({names}) were read from {path}."
        )
    return (
        text.format(mode=settings.mode, names=", ".join(info.used), path=info.path)
        + " "
        + _(
            "That file holds the keys of the personal data stored by this server: keep it and "
            "back it up with the database. For real use set PORTE_MODE=production and give every "
            "secret in the environment (`porte keys generate`)."
        )
    )
