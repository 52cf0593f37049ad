"""hydite-controlplane: serve the admin API and ConfigService (or `migrate` and exit)."""

from __future__ import annotations

import asyncio
import sys

import uvloop
from aiohttp import web

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
    web.run_app(
        build_app(settings),
        host=settings.host,
        port=settings.admin_port,
        access_log=None,
        print=None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
