"""`porte serve`: run the HTTP service.

Behind a reverse proxy (nginx, Caddy, a load balancer) every connection comes from the proxy:
``--proxy-headers`` makes uvicorn take the client's address from ``X-Forwarded-For`` (and the
scheme from ``X-Forwarded-Proto``), but only on connections from ``--forwarded-allow-ips`` (the
proxy's addresses or networks, comma-separated), so nobody else can pretend to be another
client. Sign-in throttling, invite links and the audit log then see the real client.
"""

from __future__ import annotations

from typing import Any

import typer


def uvicorn_options(
    *,
    host: str,
    port: int,
    workers: int,
    proxy_headers: bool,
    forwarded_allow_ips: str | None,
) -> dict[str, Any]:
    """The keyword arguments ``porte serve`` gives ``uvicorn.run`` (besides the app)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": "info",
        "proxy_headers": proxy_headers,
    }
    if proxy_headers:
        # Without a list, uvicorn trusts 127.0.0.1 only (or $FORWARDED_ALLOW_IPS).
        options["forwarded_allow_ips"] = forwarded_allow_ips or "127.0.0.1"
    return options


def register(cli: typer.Typer) -> None:
    """Add ``serve``."""

    @cli.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port to listen on."),
        workers: int = typer.Option(1, help="Worker processes."),
        proxy_headers: bool | None = typer.Option(
            None,
            "--proxy-headers/--no-proxy-headers",
            help="Behind a reverse proxy: take the client's address from X-Forwarded-For "
            "(from --forwarded-allow-ips only). Default: PORTE_PROXY_HEADERS, else off.",
            show_default=False,
        ),
        forwarded_allow_ips: str | None = typer.Option(
            None,
            "--forwarded-allow-ips",
            help="Addresses or networks of the proxy whose X-Forwarded-* headers are trusted, "
            "comma-separated, e.g. 172.16.0.0/12 for a proxy in Docker. Default: "
            "PORTE_FORWARDED_ALLOW_IPS, else 127.0.0.1.",
        ),
    ) -> None:
        """Run the service (uvicorn)."""
        import os

        import uvicorn

        from app.config import base_url_for, get_settings
        from app.i18n import _, current
        from app.local_secrets import announce_once

        # `porte --lang en serve`: English is also what the service answers when a client does
        # not ask (Accept-Language); the workers read it from the environment.
        os.environ["PORTE_LANG"] = current()
        settings = get_settings()  # the environment and .env
        if not settings.public_base_url and settings.mode != "production":
            # Invite links and QR codes must point at this server: derive the address from
            # --host/--port (production refuses to start without PORTE_PUBLIC_BASE_URL).
            os.environ["PORTE_PUBLIC_BASE_URL"] = base_url_for(host, port)
            typer.echo(
                _(
                    "Invite links will point to {url} (set PORTE_PUBLIC_BASE_URL to the address "
                    "phones reach, e.g. behind a proxy)."
                ).format(url=os.environ["PORTE_PUBLIC_BASE_URL"])
            )
        given_ips = forwarded_allow_ips
        if proxy_headers is None:
            proxy_headers = settings.proxy_headers
        forwarded_allow_ips = forwarded_allow_ips or settings.forwarded_allow_ips

        if given_ips and not proxy_headers:
            typer.secho(
                _("--forwarded-allow-ips has no effect without --proxy-headers."),
                fg="yellow",
                err=True,
            )
        announce_once(settings, lambda m: typer.secho(m, fg="yellow", err=True))
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            **uvicorn_options(
                host=host,
                port=port,
                workers=workers,
                proxy_headers=proxy_headers,
                forwarded_allow_ips=forwarded_allow_ips,
            ),
            # SIGTERM: stop accepting, let requests in flight finish within the grace period.
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
