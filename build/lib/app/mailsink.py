"""A local SMTP sink (aiosmtpd) for the demo and the tests: keeps every message it receives.

It accepts mail on 127.0.0.1 only, delivers nothing, and keeps the messages in memory (and, for
the demo, writes each one to a folder so the links can be opened). Never used in production.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://\S+")


class _Handler:
    def __init__(self, sink: MailSink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.sink._keep(message)  # type: ignore[arg-type]
        return "250 Message accepted"


class MailSink:
    """Start with ``start()``; ``messages`` lists what arrived; ``links(to)``, the URLs sent."""

    def __init__(self, port: int = 0, folder: Path | None = None):
        self.folder = folder
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        if port == 0:  # aiosmtpd connects to its own port to check it started: pick one now
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=port)

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def _keep(self, message: EmailMessage) -> None:
        with self._arrived:
            self.messages.append(message)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                n = len(self.messages)
                (self.folder / f"{n:04d}.eml").write_bytes(bytes(message))
            self._arrived.notify_all()

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for ``address``."""
        with self._lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def links(self, address: str) -> list[str]:
        """Every URL in the messages sent to ``address``, oldest first."""
        out = []
        for m in self.to(address):
            body = m.get_body(preferencelist=("plain",))
            out += _LINK.findall(body.get_content() if body else "")
        return out

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until ``count`` messages for ``address`` arrived (or fail after ``timeout``)."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: (
                    len([m for m in self.messages if address.lower() in str(m["To"]).lower()])
                    >= count
                ),
                timeout,
            )
        found = self.to(address)
        if len(found) < count:
            raise AssertionError(f"{len(found)} message(s) for {address}, expected {count}")
        return found
