"""TOTP secrets encrypted at rest (issue 4, follow-up).

``app_user.totp_secret_enc`` holds the secret encrypted with the data keys (AES-256-GCM, the
same envelope as supporters' personal columns, ``app.services.crypto``), with associated data
``app_user|<user id>|totp_secret``: a ciphertext copied into another account does not open.
``totp_key_id`` names the key, so ``porte keys rotate`` can re-encrypt it.

Existing plain-text secrets are encrypted here, with the keys of the environment the service
reads (``PORTE_DATA_KEYS`` / ``PORTE_DATA_KEY_ID``, or ``.env``). When some exist and the keys are
not set, the upgrade refuses and changes nothing: set the keys as for the service and run it
again. A database with no secret (a new one, or nobody turned two-factor on) needs no key.
``downgrade()`` decrypts them back into ``totp_secret`` (and so needs the keys when there are
some).

``totp_secret`` (plain text) stays, always NULL: older code paths still clear it
(``porte admin reset-2fa``, the demo), and nothing reads it any more. Turning two-factor off
by any path (or clearing ``totp_secret``) also drops the encrypted secret (trigger
``porte_totp_off``).

Revision ID: 0010_totp_at_rest
Revises: 0009_door_versions
"""

from alembic import op
from sqlalchemy import text

revision = "0010_totp_at_rest"
down_revision = "0009_door_versions"
branch_labels = None
depends_on = None

COLUMN = "totp_secret"  # the column name bound into the associated data


class MigrationRefused(RuntimeError):
    """The migration cannot run in this environment; nothing was changed."""


def _cipher(count: int, verb: str):
    """The data keys of the environment, or a clear refusal naming what to do."""
    from app.config import get_settings
    from app.services.access.crypto import Cipher, KeyError_

    try:
        return Cipher.from_settings(get_settings())
    except KeyError_ as exc:
        raise MigrationRefused(
            f"{count} account(s) have a two-factor (TOTP) secret that this migration must "
            f"{verb}, which needs the data keys: {exc.detail} Set PORTE_DATA_KEYS and "
            "PORTE_DATA_KEY_ID in this environment exactly as for the service (or in .env), then "
            "run `porte db migrate` again. Nothing was changed."
        ) from None


def upgrade() -> None:
    from app.services.access.crypto import account_aad

    op.execute("ALTER TABLE app_user ADD COLUMN totp_secret_enc bytea, ADD COLUMN totp_key_id text")
    op.execute(
        "ALTER TABLE app_user ADD CONSTRAINT app_user_totp_key CHECK "
        "((totp_secret_enc IS NULL) = (totp_key_id IS NULL))"
    )
    bind = op.get_bind()
    rows = bind.execute(
        text("SELECT id, totp_secret FROM app_user WHERE totp_secret IS NOT NULL FOR UPDATE")
    ).all()
    if rows:
        cipher = _cipher(len(rows), "encrypt")
        for r in rows:
            bind.execute(
                text(
                    "UPDATE app_user SET totp_secret_enc = :b, totp_key_id = :k, "
                    "totp_secret = NULL WHERE id = :u"
                ),
                {
                    "b": cipher.encrypt(r.totp_secret, ad=account_aad(r.id, COLUMN)),
                    "k": cipher.current,
                    "u": r.id,
                },
            )
    # Whatever turns two-factor sign-in off or clears the old column (the API, `porte admin
    # reset-2fa`, the demo reset) also forgets the encrypted secret: no stale one is left behind.
    # Enrolment writes only the new columns, so a pending (unconfirmed) enrolment is kept.
    op.execute(
        """
        CREATE FUNCTION porte_totp_off() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.totp_secret_enc := NULL;
            NEW.totp_key_id := NULL;
            NEW.totp_secret := NULL;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER app_user_totp_off BEFORE UPDATE OF totp_enabled, totp_secret "
        "ON app_user FOR EACH ROW WHEN (NOT NEW.totp_enabled) "
        "EXECUTE FUNCTION porte_totp_off()"
    )


def downgrade() -> None:
    from app.services.access.crypto import DecryptionFailed, account_aad

    op.execute("DROP TRIGGER IF EXISTS app_user_totp_off ON app_user")
    op.execute("DROP FUNCTION IF EXISTS porte_totp_off()")
    bind = op.get_bind()
    rows = bind.execute(
        text(
            "SELECT id, totp_secret_enc, totp_key_id FROM app_user "
            "WHERE totp_secret_enc IS NOT NULL FOR UPDATE"
        )
    ).all()
    if rows:
        cipher = _cipher(len(rows), "decrypt back into plain text")
        for r in rows:
            try:
                plain = cipher.decrypt(
                    r.totp_secret_enc, key_id=r.totp_key_id, ad=account_aad(r.id, COLUMN)
                )
            except DecryptionFailed as exc:
                raise MigrationRefused(
                    f"The TOTP secret of account {r.id} cannot be decrypted ({exc}). Add the "
                    "missing key to PORTE_DATA_KEYS, or turn that account's two-factor sign-in "
                    "off (`porte admin reset-2fa EMAIL`), then downgrade again. Nothing was "
                    "changed."
                ) from None
            bind.execute(
                text("UPDATE app_user SET totp_secret = :s WHERE id = :u"),
                {"s": plain, "u": r.id},
            )
    op.execute("ALTER TABLE app_user DROP CONSTRAINT IF EXISTS app_user_totp_key")
    op.execute(
        "ALTER TABLE app_user DROP COLUMN IF EXISTS totp_key_id, "
        "DROP COLUMN IF EXISTS totp_secret_enc"
    )
