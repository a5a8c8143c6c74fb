"""`porte admin create|password|rights|reset-2fa EMAIL` and `porte audit purge`.

Passwords are typed at a hidden prompt (twice), or read from standard input with
``--password-stdin`` (scripts, provisioning), never passed as arguments, so they stay out of
shell history and process lists.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from typing import Any

import typer

from app.authz import ADMIN
from app.commands import failed
from app.config import Settings
from app.i18n import _, role_name

MIN_PASSWORD = 10


def _settings() -> Settings:
    from app.config import get_settings

    return get_settings()


def read_password_stdin() -> str:
    """Read a new password from the first line of standard input (no prompt, no echo)."""

    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise failed(_("No password on standard input."), 2)
    if len(password) < MIN_PASSWORD:
        raise failed(
            _("The password on standard input is shorter than {n} characters.").format(
                n=MIN_PASSWORD
            ),
            2,
        )
    return password


def new_password(from_stdin: bool) -> str:
    """A new password: from standard input, or asked twice at a hidden prompt."""
    return read_password_stdin() if from_stdin else ask_password()


def ask_password() -> str:
    """Read a new password twice at a hidden prompt."""
    for _try in range(3):
        first = getpass.getpass(_("Password (not shown): "))
        if len(first) < MIN_PASSWORD:
            typer.secho(
                _("Use at least {n} characters.").format(n=MIN_PASSWORD),
                fg="red",
                err=True,
            )
            continue
        if getpass.getpass(_("Same password again: ")) != first:
            typer.secho(_("The two passwords differ; try again."), fg="red", err=True)
            continue
        return first
    raise failed(_("No password set."))


async def create_account(
    settings: Settings,
    email: str,
    password_hash: str,
    *,
    campaign: uuid.UUID | None,
    role: str | None,
    reset: bool = False,
    can_create_campaigns: bool = False,
    server_admin: bool = False,
    display_name: str | None = None,
) -> tuple[uuid.UUID, bool]:
    """Create (or with ``reset`` re-password) an account, optionally adding it to a campaign.

    A new password ends every sign-in of the account (refresh and access tokens: trigger
    ``app_user_sign_ins_end``)."""
    from sqlalchemy import text

    from app.db import owner_engine

    async with owner_engine(settings) as engine:
        async with engine.begin() as conn:
            existing = (
                await conn.execute(text("SELECT id FROM app_user WHERE email = :e"), {"e": email})
            ).scalar()
            if existing and not reset:
                raise ValueError(
                    _(
                        "{email} already has an account. Reset its password with "
                        "`porte admin password {email}`."
                    ).format(email=email)
                )
            if not existing and reset:
                raise ValueError(
                    _("No account {email}; create it with `porte admin create {email}`.").format(
                        email=email
                    )
                )
            if existing:
                await conn.execute(
                    text("UPDATE app_user SET password_hash = :h, is_active = true WHERE id = :u"),
                    {"h": password_hash, "u": existing},
                )
                # A new password ends every sign-in made with the old one.
                await conn.execute(
                    text(
                        "UPDATE refresh_token SET revoked_at = now() "
                        "WHERE user_id = :u AND revoked_at IS NULL"
                    ),
                    {"u": existing},
                )
                uid = existing
            else:
                uid = (
                    await conn.execute(
                        text(
                            "INSERT INTO app_user (email, password_hash, can_create_campaigns, "
                            "server_admin, display_name) VALUES (:e, :h, :cc, :sa, :n) "
                            "RETURNING id"
                        ),
                        {
                            "e": email,
                            "n": display_name,
                            "h": password_hash,
                            "cc": can_create_campaigns or server_admin,
                            "sa": server_admin,
                        },
                    )
                ).scalar_one()
            if campaign is not None:
                await _add_member(conn, campaign, uid, role or ADMIN)
        return uid, not existing


async def _add_member(conn: Any, campaign: uuid.UUID, uid: uuid.UUID, role: str) -> None:
    """Make the account a member of ``campaign`` with ``role`` (ValueError: no such campaign)."""
    from sqlalchemy import text

    found = (
        await conn.execute(text("SELECT 1 FROM campaign WHERE id = :c"), {"c": campaign})
    ).scalar()
    if not found:
        raise ValueError(
            _("No campaign {campaign}. List them with the API (GET /campaigns).").format(
                campaign=campaign
            )
        )
    await conn.execute(
        text(
            "INSERT INTO membership (campaign_id, user_id, role) VALUES (:c, :u, :r) "
            "ON CONFLICT (campaign_id, user_id) DO UPDATE SET role = EXCLUDED.role"
        ),
        {"c": campaign, "u": uid, "r": role},
    )


async def account_exists(settings: Settings, email: str) -> bool:
    """Whether an account uses this e-mail."""
    from sqlalchemy import text

    from app.db import owner_engine

    async with owner_engine(settings) as engine, engine.connect() as conn:
        found = await conn.execute(text("SELECT 1 FROM app_user WHERE email = :e"), {"e": email})
        return found.scalar() is not None


async def reset_second_factor(settings: Settings, email: str) -> bool:
    """Clear an account's TOTP and end its sign-ins; False when there is no such account."""
    from sqlalchemy import text

    from app.db import owner_engine

    async with owner_engine(settings) as engine:
        async with engine.begin() as conn:
            uid = (
                await conn.execute(
                    text(
                        "UPDATE app_user SET totp_enabled = false, totp_secret_enc = NULL, "
                        "totp_key_id = NULL, totp_last_step = NULL WHERE email = :e RETURNING id"
                    ),
                    {"e": email},
                )
            ).scalar()
            if uid is None:
                return False
            await conn.execute(
                text(
                    "UPDATE refresh_token SET revoked_at = now() "
                    "WHERE user_id = :u AND revoked_at IS NULL"
                ),
                {"u": uid},
            )
        return True


async def set_rights(
    settings: Settings,
    email: str,
    *,
    can_create_campaigns: bool | None,
    server_admin: bool | None,
) -> dict | None:
    """Change an account's server-level rights (None: leave as is); None when no such account."""
    from sqlalchemy import text

    from app.db import owner_engine

    async with owner_engine(settings) as engine, engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE app_user SET "
                    "can_create_campaigns = coalesce(:cc, can_create_campaigns), "
                    "server_admin = coalesce(:sa, server_admin) WHERE email = :e "
                    "RETURNING can_create_campaigns, server_admin"
                ),
                {"e": email, "cc": can_create_campaigns, "sa": server_admin},
            )
        ).first()
        return dict(row._mapping) if row else None


def _valid_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise failed(_("'{email}' is not an e-mail address.").format(email=email), 2)
    return email


def _checked_name_and_role(
    name: str | None, role: str | None, campaign: uuid.UUID | None
) -> str | None:
    """``--name`` trimmed (None when empty); exit 2 for a name that is not one short line, an
    unknown role, or a role without a campaign."""
    from app.authz import ROLES

    name = (name or "").strip() or None
    if name is not None and (len(name) > 80 or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise failed(_("--name: one line of at most 80 characters."), 2)
    if role is not None and role not in ROLES:
        raise failed(
            _("Unknown role '{role}': use one of {roles}.").format(
                role=role, roles=", ".join(ROLES)
            ),
            2,
        )
    if role is not None and campaign is None:
        raise failed(_("--role needs --campaign."), 2)
    return name


def _say_created(
    email: str,
    uid: uuid.UUID,
    role: str | None,
    campaign: uuid.UUID | None,
    can_create_campaigns: bool,
    server_admin: bool,
) -> None:
    """The account made, its membership, and whether it may create campaigns (or how to)."""
    if campaign:
        typer.echo(
            _("Account {email} created (id {uid}) as {role} of campaign {campaign}.").format(
                email=email, uid=uid, role=role_name(role or ADMIN), campaign=campaign
            )
        )
    else:
        typer.echo(_("Account {email} created (id {uid}).").format(email=email, uid=uid))

    if server_admin:
        typer.echo(_("It is a server admin: it may create campaigns and give that right."))
    elif can_create_campaigns:
        typer.echo(_("It may create campaigns: sign in (POST /auth/token), then POST /campaigns."))
    elif campaign is None:
        typer.echo(
            _(
                "It may not create campaigns: give it the right with `porte admin rights "
                "{email} --can-create-campaigns`, or invite it to a campaign (POST "
                "/campaigns/{{id}}/members)."
            ).format(email=email)
        )


def register(cli: typer.Typer) -> None:
    """Add the ``admin`` and ``audit`` groups (long: it declares their commands, each short)."""
    admin = typer.Typer(help="Accounts: create the first admin, reset a password.")
    cli.add_typer(admin, name="admin")

    @admin.command("create")
    def create(
        email: str = typer.Argument(..., help="E-mail of the new account (its sign-in name)."),
        campaign: uuid.UUID | None = typer.Option(None, help="Also add it to this campaign id."),
        role: str | None = typer.Option(
            None, help="Role in --campaign: admin (default), organiser, analyst, volunteer."
        ),
        can_create_campaigns: bool = typer.Option(
            False, "--can-create-campaigns", help="The account may create campaigns."
        ),
        server_admin: bool = typer.Option(
            False,
            "--server-admin",
            help="Server admin: may create campaigns and give other accounts that right.",
        ),
        password_stdin: bool = typer.Option(
            False,
            "--password-stdin",
            help="Read the password from the first line of standard input (no prompt).",
        ),
        name: str | None = typer.Option(
            None, "--name", help="The name organisers see beside the e-mail (80 characters)."
        ),
    ) -> None:
        """Create an account; the password is asked twice (or read from standard input with
        --password-stdin) and never shown."""
        from app.credentials import hash_password

        email = _valid_email(email)
        name = _checked_name_and_role(name, role, campaign)
        if asyncio.run(account_exists(_settings(), email)):
            raise failed(
                _(
                    "{email} already has an account. Reset its password with "
                    "`porte admin password {email}`."
                ).format(email=email)
            )
        password = new_password(password_stdin)
        try:
            uid, _created = asyncio.run(
                create_account(
                    _settings(),
                    email,
                    hash_password(password),
                    campaign=campaign,
                    role=role,
                    can_create_campaigns=can_create_campaigns,
                    server_admin=server_admin,
                    display_name=name,
                )
            )
        except ValueError as exc:
            raise failed(str(exc)) from exc
        _say_created(email, uid, role, campaign, can_create_campaigns, server_admin)

    @admin.command("password")
    def password(
        email: str = typer.Argument(..., help="E-mail of the account."),
        password_stdin: bool = typer.Option(
            False,
            "--password-stdin",
            help="Read the password from the first line of standard input (no prompt).",
        ),
    ) -> None:
        """Set a new password for an account (asked twice, or read from standard input with
        --password-stdin; never shown). Every sign-in of the account ends at once."""
        from app.credentials import hash_password

        email = _valid_email(email)
        if not asyncio.run(account_exists(_settings(), email)):
            raise failed(
                _("No account {email}; create it with `porte admin create {email}`.").format(
                    email=email
                )
            )
        new = new_password(password_stdin)
        try:
            asyncio.run(
                create_account(
                    _settings(), email, hash_password(new), campaign=None, role=None, reset=True
                )
            )
        except ValueError as exc:
            raise failed(str(exc)) from exc
        typer.echo(_("Password of {email} changed.").format(email=email))

        typer.echo(_("Every sign-in of this account has ended."))

    @admin.command("rights")
    def rights(
        email: str = typer.Argument(..., help="E-mail of the account."),
        can_create_campaigns: bool | None = typer.Option(
            None,
            "--can-create-campaigns/--no-can-create-campaigns",
            help="Give (or take) the right to create campaigns.",
        ),
        server_admin: bool | None = typer.Option(
            None,
            "--server-admin/--no-server-admin",
            help="Make (or unmake) a server admin, who may give the right to create campaigns.",
        ),
    ) -> None:
        """Show or change an account's server-level rights."""

        email = _valid_email(email)
        row = asyncio.run(
            set_rights(
                _settings(),
                email,
                can_create_campaigns=can_create_campaigns,
                server_admin=server_admin,
            )
        )
        if row is None:
            raise failed(_("No account {email}.").format(email=email))
        yes, no = _("yes"), _("no")
        typer.echo(
            _("{email}: may create campaigns: {cc}; server admin: {sa}.").format(
                email=email,
                cc=yes if row["can_create_campaigns"] else no,
                sa=yes if row["server_admin"] else no,
            )
        )

    @admin.command("reset-2fa")
    def reset_2fa(email: str = typer.Argument(..., help="E-mail of the account.")) -> None:
        """Turn two-factor sign-in off for an account that lost its authenticator."""
        email = _valid_email(email)
        if not asyncio.run(reset_second_factor(_settings(), email)):
            raise failed(_("No account {email}.").format(email=email))
        typer.echo(
            _(
                "Two-factor sign-in of {email} is off and its sign-ins are ended. It can enrol "
                "a new authenticator after signing in (POST /auth/totp/enrol)."
            ).format(email=email)
        )

    audit = typer.Typer(help="The audit log of views and exports of personal data.")
    cli.add_typer(audit, name="audit")

    @audit.command("purge")
    def purge(
        days: int | None = typer.Option(
            None, help="Keep this many days (default PORTE_AUDIT_RETENTION_DAYS, 365)."
        ),
    ) -> None:
        """Delete audit events older than the retention period."""
        from app.config import get_settings
        from app.db import owner_engine
        from app.services.access.audit import purge_audit

        settings = get_settings()

        async def run() -> int:
            async with owner_engine(settings) as engine:
                return await purge_audit(
                    engine, days=days if days is not None else settings.audit_retention_days
                )

        n = asyncio.run(run())
        typer.echo(_("{n} audit events older than the retention period deleted.").format(n=n))
