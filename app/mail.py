"""Outgoing e-mail through the campaign's own SMTP server (``PORTE_SMTP_*``).

Used for links that must reach the person who holds an address: confirming a privacy request,
inviting a volunteer or a member. Nothing else is sent. The demo and the test suite run a local
SMTP sink (``app.mailsink``) and read the links from it; in production, point ``PORTE_SMTP_HOST``
at the campaign's mail server.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from app.config import Settings
from app.errors import ServiceUnavailable
from app.i18n import _

log = logging.getLogger("porte.mail")


def _send_sync(settings: Settings, message: EmailMessage) -> None:
    host, port = settings.smtp_host, settings.smtp_port
    timeout = settings.smtp_timeout_seconds
    if settings.smtp_tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


async def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Send one plain-text e-mail; raise ``ServiceUnavailable`` (503) when the server refuses.

    The recipient is never logged (it is personal data); only that a message was sent.
    """
    if not settings.smtp_host:
        raise ServiceUnavailable(
            _("No mail server is configured (PORTE_SMTP_HOST): the message could not be sent."),
            retry_after=3600,
        )
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message.set_content(body)
    try:
        await asyncio.to_thread(_send_sync, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail not sent: %s", type(exc).__name__)
        raise ServiceUnavailable(
            _("The mail server did not accept the message; try again later."), retry_after=60
        ) from exc
    log.info("mail sent (%s)", subject)
