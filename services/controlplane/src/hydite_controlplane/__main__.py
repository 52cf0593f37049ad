"""hydite-controlplane: serve the admin API and ConfigService (or `migrate` and exit)."""

from __future__ import annotations

import asyncio
import sys

import uvloop

from hydite_common.lifecycle import serve_until_stopped
from hydite_common.telemetry import configure_logging
from hydite_controlplane.app import build_app, prepare_database
from hydite_controlplane.settings import ControlplaneSettings


def main() -> None:
    """Entry point of the hydite-controlplane command."""
    settings = ControlplaneSettings()
    configure_logging("controlplane", settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        asyncio.run(prepare_database(settings))
        return
    uvloop.install()
    app = build_app(settings)
    asyncio.run(
        serve_until_stopped(
            app,
            settings.host,
            settings.admin_port,
            delay_seconds=settings.shutdown_delay_seconds,
            drain_seconds=settings.drain_seconds,
        )
    )


if __name__ == "__main__":
    main()
