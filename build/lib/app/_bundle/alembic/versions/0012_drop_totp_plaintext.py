"""Drop the plaintext TOTP column: secrets live only encrypted (``totp_secret_enc``, 0010).

After 0010 the column ``app_user.totp_secret`` was always NULL and read by nothing; keeping it
left a place where a future change could store a secret in clear. Turning two-factor sign-in off
(by the API, ``porte admin reset-2fa`` or the demo reset) still drops the encrypted secret
(trigger ``app_user_totp_off``, now on ``totp_enabled`` alone).

Revision ID: 0012_drop_totp_plaintext
Revises: 0011_consent_check_plan
"""

from alembic import op

revision = "0012_drop_totp_plaintext"
down_revision = "0011_consent_check_plan"
branch_labels = None
depends_on = None


def _trigger(columns: str, clear_plain: bool) -> None:
    op.execute("DROP TRIGGER IF EXISTS app_user_totp_off ON app_user")
    op.execute(
        "CREATE OR REPLACE FUNCTION porte_totp_off() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.totp_secret_enc := NULL; NEW.totp_key_id := NULL; "
        + ("NEW.totp_secret := NULL; " if clear_plain else "")
        + "RETURN NEW; END $$"
    )
    op.execute(
        f"CREATE TRIGGER app_user_totp_off BEFORE UPDATE OF {columns} "
        "ON app_user FOR EACH ROW WHEN (NOT NEW.totp_enabled) "
        "EXECUTE FUNCTION porte_totp_off()"
    )


def upgrade() -> None:
    """No plaintext column any more; the trigger watches totp_enabled only."""
    _trigger("totp_enabled", clear_plain=False)
    op.execute("ALTER TABLE app_user DROP COLUMN totp_secret")


def downgrade() -> None:
    """Bring back the (empty) plaintext column and 0010's trigger."""
    op.execute("ALTER TABLE app_user ADD COLUMN totp_secret text")
    _trigger("totp_enabled, totp_secret", clear_plain=True)
