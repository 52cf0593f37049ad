"""hydite-spend-ingest: consume usage events and write spend logs."""

from __future__ import annotations

import uvloop
from aiohttp import web

from hydite_common.telemetry import configure_logging
from hydite_spend_ingest.app import build_app
from hydite_spend_ingest.settings import IngestSettings


def main() -> None:
    """Entry point of the hydite-spend-ingest command."""
    settings = IngestSettings()
    configure_logging("spend-ingest", settings.log_level)
    uvloop.install()
    web.run_app(
        build_app(settings),
        host=settings.host,
        port=settings.ingest_port,
        access_log=None,
        print=None,
        # A scraper's keep-alive connection must not hold the exit for aiohttp's default 60 s.
        shutdown_timeout=2.0,
    )


if __name__ == "__main__":
    main()
