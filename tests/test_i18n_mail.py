"""Languages negotiated per request, and mail sent through a real SMTP server (the local sink)."""

from __future__ import annotations

import uuid

import pytest

from app.errors import ServiceUnavailable
from app.i18n import negotiate
from app.mail import send_mail
from tests.fixtures_mail import mail_sink


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "fr"),
        ("", "fr"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,en;q=0.5,fr;q=0.4", "en"),
        ("de-DE", "fr"),
        ("en;q=bogus,fr;q=0.1", "fr"),
    ],
)
def test_negotiate(header, lang):
    assert negotiate(header) == lang


async def test_mail_reaches_the_sink(settings):
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    await send_mail(settings, to=to, subject="Confirm", body="Open https://x.test/c#abc now.")
    (msg,) = mail_sink().wait_for(to)
    assert msg["Subject"] == "Confirm"
    assert mail_sink().links(to) == ["https://x.test/c#abc"]


async def test_mail_server_down_is_503(settings):
    down = settings.model_copy(update={"smtp_port": 1})
    with pytest.raises(ServiceUnavailable) as err:
        await send_mail(down, to="a@example.org", subject="x", body="y")
    assert err.value.status == 503 and err.value.retry_after > 0
