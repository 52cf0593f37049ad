"""hydite-dataplane: serve inference from the config snapshot streamed by the control plane."""

from __future__ import annotations

import asyncio
import gc

import uvloop

from hydite_common.telemetry import configure_logging
from hydite_dataplane.app import IN_FLIGHT, build_app
from hydite_dataplane.serving import serve
from hydite_dataplane.settings import DataplaneSettings


def main() -> None:
    """Entry point of the hydite-dataplane command."""
    settings = DataplaneSettings()
    configure_logging("dataplane", settings.log_level)
    uvloop.install()
    app = build_app(settings)
    # Start-up objects never die; keeping them out of the GC's generations saves work per request.
    gc.freeze()
    gc.set_threshold(settings.gc_young_threshold, 20, 20)
    asyncio.run(serve(app, settings, app[IN_FLIGHT]))


if __name__ == "__main__":
    main()
