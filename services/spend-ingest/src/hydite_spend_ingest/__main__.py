"""hydite-spend-ingest: consume usage events and write spend logs."""

from __future__ import annotations

import asyncio

import uvloop

from hydite_common.lifecycle import serve_until_stopped
from hydite_common.telemetry import configure_logging
from hydite_spend_ingest.app import build_app
from hydite_spend_ingest.settings import IngestSettings


def main() -> None:
    """Entry point of the hydite-spend-ingest command."""
    settings = IngestSettings()
    configure_logging("spend-ingest", settings.log_level)
    uvloop.install()
    app = build_app(settings)
    asyncio.run(
        serve_until_stopped(
            app,
            settings.host,
            settings.ingest_port,
            delay_seconds=settings.shutdown_delay_seconds,
            drain_seconds=settings.drain_seconds,
        )
    )


if __name__ == "__main__":
    main()
