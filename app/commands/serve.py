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
        import uvicorn

        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            proxy_headers=False,
        )
