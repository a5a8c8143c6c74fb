"""The local SMTP sink every test app sends its mail to (app.mailsink, aiosmtpd): real SMTP."""

from __future__ import annotations

from app.mailsink import MailSink

_SINK: MailSink | None = None


def mail_sink() -> MailSink:
    """The session's sink, started on first use on a free port of 127.0.0.1."""
    global _SINK
    if _SINK is None:
        _SINK = MailSink().start()
    return _SINK
