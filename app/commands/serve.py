"""`porte serve`: run the HTTP service."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    """Add ``serve``."""

    @cli.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port to listen on."),
        workers: int = typer.Option(1, help="Worker processes."),
    ) -> None:
        """Run the service (uvicorn)."""
        import os

        import uvicorn

        from app.config import base_url_for, get_settings

        settings = get_settings()
        if not settings.public_base_url and settings.mode != "production":
            # Invite links and QR codes must point at this server: derive the address from
            # --host/--port (production refuses to start without PORTE_PUBLIC_BASE_URL).
            os.environ["PORTE_PUBLIC_BASE_URL"] = base_url_for(host, port)
            typer.echo(
                f"Invite links will point to {os.environ['PORTE_PUBLIC_BASE_URL']} "
                "(set PORTE_PUBLIC_BASE_URL to the address phones reach, e.g. behind a proxy)."
            )

        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            proxy_headers=False,
            # SIGTERM: stop accepting, let requests in flight finish within the grace period.
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
