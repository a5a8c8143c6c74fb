"""Settings, read from the environment (prefix ``PORTE_``) or passed explicitly in tests."""

from __future__ import annotations

import json
import os
import re
import stat
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import paths
from app.i18n import _

REPO_ROOT = paths.SOURCE_ROOT


def default_db_dir() -> Path:
    """Where the private cluster lives: ``.porte/db`` in the checkout (``app.paths.state_dir``),
    unless run as root from a place the unprivileged ``porte`` user cannot reach (e.g. a checkout
    under /root, mode 700)."""
    local = paths.state_dir() / "db"
    if os.geteuid() != 0:
        return local
    for parent in [p for p in [local.parent, *local.parent.parents] if p.exists()]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return Path("/var/lib/porte-a-porte/db")
    return local


DEFAULT_SECRET = "change-me-insecure-development-secret"
LOCAL_BASE_URL = "http://127.0.0.1:8000"


def base_url_for(host: str, port: int) -> str:
    """The address a browser reaches ``porte serve --host HOST --port PORT`` at."""
    if host in ("0.0.0.0", "::", ""):
        import socket

        host = socket.gethostname()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    """Everything the service and the CLI need to know about their environment."""

    model_config = SettingsConfigDict(env_prefix="PORTE_", env_file=".env", extra="ignore")

    mode: Literal["development", "demo", "production", "test"] = "development"

    # Database. DATABASE_URL is the service's own role (owns nothing, no BYPASSRLS).
    # OWNER_DATABASE_URL owns the schema: migrations, imports of public data, maintenance.
    # Both default to the private cluster managed by `porte db` (see app/pgcluster.py).
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PORTE_DATABASE_URL")
    )
    owner_database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OWNER_DATABASE_URL", "PORTE_OWNER_DATABASE_URL"),
    )
    app_role: str = "porte_app"
    db_dir: Path = Field(default_factory=default_db_dir)
    db_port: int = 54329
    db_pool_size: int = 10
    # Time limits (seconds): a slow query or a stuck database cannot pin every worker. A request
    # past its limit gets 503 with Retry-After; nothing half-done is committed.
    statement_timeout_s: float = 15  # every statement of a request (visits included)
    tile_statement_timeout_s: float = 5  # map tiles (the hot asyncpg pool)
    export_statement_timeout_s: float = 120  # exports, OGC pages, ranking recomputes
    pool_timeout_s: float = 5  # waiting for a free database connection
    # A PostgreSQL streaming replica (hot standby) for reads that tolerate a few seconds of lag:
    # ranking, exports, OGC, district tiles, analyst aggregates (docs/scale.md). The service's
    # role on the replica (the same role and password as on the primary: a physical replica
    # copies them). Empty: everything reads the primary.
    replica_url: str = Field(
        default="", validation_alias=AliasChoices("REPLICA_URL", "PORTE_REPLICA_URL")
    )
    replica_max_lag_s: float = 5  # replay further behind than this: read the primary instead
    replica_retry_s: float = 10  # after the replica failed: primary only for this long
    replica_connect_timeout_s: float = 2  # a replica that does not answer is skipped quickly
    replica_lag_check_s: float = 1  # the map tiles reuse one lag reading this long (per worker)
    request_deadline_s: float = 90  # a whole request, end to end
    shutdown_grace_s: float = 20  # SIGTERM: requests in flight may finish within this

    # Secrets. Outside test mode the public default is never used: production must be given
    # every secret; development and demo take the missing ones from a local file generated on
    # first start (app/local_secrets.py, ``secrets_file``: default next to the private cluster).
    secret_key: str = DEFAULT_SECRET
    # Data-encryption keys for personal data: JSON object {"key id": "base64 32-byte key"}.
    data_keys: str = ""
    data_key_id: str = ""
    hmac_key: str = ""
    secrets_file: Path | None = None

    # Auth
    access_token_minutes: int = 15
    refresh_token_days: int = 30  # a refresh token unused this long expires
    session_max_days: int = 30  # a sign-in (its whole refresh chain) ends this long after it began
    login_failures_per_minute: int = 5
    invite_max_days: int = 30
    member_invitation_days: int = 7  # invitations by e-mail to join a campaign
    member_invitations_per_hour: int = 100  # per campaign: bounds the mail a campaign can send

    # Privacy
    k_threshold: int = 11
    audit_retention_days: int = 365
    audit_burst_threshold: int = 200  # views/exports of precise data per user and hour
    # Door tiles one viewer may load in one minute (in one worker) before that minute's audit
    # event is flagged as a burst (a bulk crawl of the map).
    audit_tile_burst: int = Field(600, ge=1)
    # The longest a campaign may keep visit outcomes after its election: election + months + days
    # (default 1 month 7 days; between 1 and 6 months). Enforced by the API and by the database
    # (``retention_policy``, written by `porte db migrate` and `porte purge` from these values).
    visit_retention_max_months: int = Field(1, ge=1, le=6)
    visit_retention_max_days: int = Field(7, ge=0, le=31)
    # Privacy-form requests still pending after this many days are deleted by `porte purge`.
    privacy_request_pending_days: int = Field(30, ge=1, le=365)
    # The public privacy form (docs/privacy.md): withdrawal, export and erasure take effect only
    # from a single-use link sent to the e-mail held for the person, valid this many hours...
    privacy_link_hours: int = Field(default=48, ge=1, le=24 * 7)
    # ...and no more links than this per person and day (the form must not flood a mailbox).
    privacy_links_per_person_day: int = Field(default=3, ge=1)
    # Door objections ("do not knock") take effect at once, within these limits per hour: per
    # sender's network (/24 or /48) and per campaign; beyond the alert threshold every further
    # objection of the hour is flagged in the audit log (the admin's burst alert).
    privacy_objections_per_origin_hour: int = Field(default=5, ge=1)
    privacy_objections_per_campaign_hour: int = Field(default=30, ge=1)
    privacy_objection_alert_per_hour: int = Field(default=10, ge=0)

    # Language of messages, CLI output and pages when the client does not ask (fr or en)
    lang: Literal["fr", "en"] = "fr"

    # Outgoing mail (privacy-request confirmations, invitations): the campaign's SMTP server.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "porte-a-porte@localhost"
    smtp_timeout_seconds: float = 10.0

    # HTTP
    # Behind a reverse proxy: trust X-Forwarded-For from these addresses (`porte serve`).
    proxy_headers: bool = False
    forwarded_allow_ips: str | None = None
    cors_origins: list[str] = []
    # The address phones and browsers reach the service at (invite links, QR codes, OGC links):
    # required in production; otherwise derived from `porte serve --host/--port`.
    public_base_url: str = ""
    # Basemap: a PMTiles archive of vector tiles served by the service itself (PORTE_BASEMAP;
    # `porte basemap import FILE` copies a checked archive to this path). No third party learns
    # where volunteers stand. docs/maps.md says how to cut a département from OpenStreetMap.
    basemap: Path = Field(default_factory=lambda: paths.state_dir() / "basemap.pmtiles")
    # Explicit opt-in to a raster tile server of another origin instead (e.g. a campaign's own
    # tile server): every tile request then tells that server where the volunteer stands.
    # Empty by default; when set, the CSP allows that origin for images and nothing else.
    basemap_raster_url: str = ""
    basemap_raster_attribution: str = ""
    static_dir: Path = paths.STATIC_DIR

    # Vector tiles
    mvt_extent: int = 4096
    mvt_buffer: int = 64
    mvt_max_features: int = 20000
    # Door tiles of admins and organisers kept in memory per worker until a visit, flag, round
    # or address import changes the doors (app/services/field/tile_cache.py); 0 turns it off.
    tile_cache_mb: int = 64

    @model_validator(mode="after")
    def _retention_ceiling(self) -> Settings:
        # PostgreSQL compares intervals counting a month as 30 days.
        if self.visit_retention_max_months * 30 + self.visit_retention_max_days > 180:
            raise ValueError(
                _(
                    "PORTE_VISIT_RETENTION_MAX_MONTHS and _DAYS add up to more than 6 months, the "
                    "longest visit outcomes may be kept after an election"
                )
            )
        return self

    # Set by app.local_secrets.with_local_secrets: where development secrets came from.
    _local_secrets: object | None = PrivateAttr(default=None)

    @property
    def local_secrets(self):  # -> app.local_secrets.LocalSecrets | None
        """Where the secrets missing from the environment were taken from (development, demo)."""
        return self._local_secrets

    @local_secrets.setter
    def local_secrets(self, value) -> None:
        self._local_secrets = value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def base_url(self) -> str:
        """``public_base_url`` without its trailing slash (the local default when unset)."""
        return (self.public_base_url or LOCAL_BASE_URL).rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                _(
                    "PORTE_PUBLIC_BASE_URL must be an http(s) address such as "
                    "https://porte.example.org (no query, no fragment)"
                )
            )
        return value

    @property
    def basemap_raster_origin(self) -> str | None:
        """scheme://host[:port] of the explicit raster basemap, or None (the default)."""
        from urllib.parse import urlsplit

        if not self.basemap_raster_url:
            return None
        parts = urlsplit(self.basemap_raster_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("basemap_raster_url")
    @classmethod
    def _check_raster_url(cls, value: str) -> str:
        value = value.strip()
        if value and (
            not value.startswith(("https://", "http://"))
            or not all(k in value for k in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError(
                _(
                    "PORTE_BASEMAP_RASTER_URL must be an http(s) URL with {z}, {x} and {y}, "
                    "e.g. https://tiles.example.org/{z}/{x}/{y}.png (or empty: the default)"
                )
            )
        return value

    @cached_property
    def data_key_map(self) -> dict[str, str]:
        """Parsed ``data_keys``: key id -> base64 key."""
        return json.loads(self.data_keys) if self.data_keys else {}

    def check_production(self) -> None:
        """Refuse to start with missing, public, short or malformed secrets (any mode but test),
        or in production without PORTE_PUBLIC_BASE_URL.

        Kept under its old name; see ``app.local_secrets.check_secrets``."""
        from app.local_secrets import check_secrets

        check_secrets(self)


def get_settings() -> Settings:
    """Settings from the environment (one object per call; the app keeps its own).

    In development and demo modes, secrets the environment leaves out come from the local
    secrets file (generated on first use): every command and the service see the same keys.
    """
    from app.local_secrets import with_local_secrets

    return with_local_secrets(Settings())
