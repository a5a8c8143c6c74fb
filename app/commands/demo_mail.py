"""The demo's outgoing mail: a local SMTP sink that writes every message to a folder.

When no mail server is configured (``PORTE_SMTP_HOST``), the demo sends nothing out (its people
are made up, and a demo is not a mail server): member invitations, the privacy form's
confirmation links and any other message go to ``app.mailsink.MailSink`` (aiosmtpd, 127.0.0.1
only), which writes each one as ``NNNN.eml`` (plain text, readable in any editor) into ``mail``
next to the private cluster (``.porte/mail`` in a checkout). The served app's ``PORTE_SMTP_*``
settings point at it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.mailsink import MailSink


def mail_folder(settings: Any) -> Path:
    """Where the demo's messages are written: ``mail`` beside the cluster's data directory."""
    return Path(settings.db_dir).parent / "mail"


def start_demo_mail(settings: Any, folder: Path | None = None) -> MailSink | None:
    """Start the sink (None when a mail server is configured), forget the messages of an earlier
    run (the numbering starts again), and point this process's SMTP settings (the environment
    the served app reads) at it."""
    if settings.smtp_host:
        return None
    folder = folder or mail_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):
        old.unlink()
    sink = MailSink(folder=folder).start()
    os.environ["PORTE_SMTP_HOST"] = "127.0.0.1"
    os.environ["PORTE_SMTP_PORT"] = str(sink.port)
    os.environ["PORTE_SMTP_TLS"] = "none"
    return sink
