"""The control plane's one NATS connection, opened in the background at start (the admin API serves
without it), and the spend totals bucket on it, which admin changes of spend write."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from hydite_common.errors import ServiceUnavailableError
from hydite_common.settings import BaseServiceSettings
from hydite_common.spend_totals import totals_bucket

log = logging.getLogger(__name__)

BACKOFF_MAX_SECONDS = 5.0
JETSTREAM_TIMEOUT_SECONDS = 2.0
"""How long one KV call may take before the admin write that needs it answers 503."""


class SpendTotalsUnavailable(ServiceUnavailableError):
    """The spend totals bucket cannot be written now (NATS unreachable); nothing was changed (503)."""

    default_code = "spend_totals_unavailable"


class NatsLink:
    """Connects with backoff until it succeeds, then opens the spend totals bucket."""

    def __init__(self, settings: BaseServiceSettings, name: str) -> None:
        self._settings = settings
        self._name = name
        self._client: NatsClient | None = None
        self._bucket: KeyValue | None = None

    async def run(self) -> None:
        """Connect and open the bucket, retrying each until it works; returns once both are up."""
        delay = 0.2
        while self._bucket is None:
            try:
                if self._client is None:
                    self._client = await self._connect()
                js = self._client.jetstream(timeout=JETSTREAM_TIMEOUT_SECONDS)
                self._bucket = await totals_bucket(js, self._settings)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("spend totals bucket not reachable yet (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _connect(self) -> NatsClient:
        client = NatsClient()
        await client.connect(
            self._settings.nats_url,
            name=self._name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=2,
        )
        return client

    def totals(self) -> KeyValue:
        """The spend totals bucket, or SpendTotalsUnavailable while NATS is not connected."""
        if self._bucket is None or self._client is None or not self._client.is_connected:
            raise SpendTotalsUnavailable(
                "spend totals cannot be written now (NATS is not reachable); nothing was changed"
            )
        return self._bucket

    def connection(self) -> NatsClient:
        """The NATS connection, or SpendTotalsUnavailable while it is not connected."""
        if self._client is None or not self._client.is_connected:
            raise SpendTotalsUnavailable("NATS is not reachable")
        return self._client

    @property
    def ready(self) -> bool:
        """Whether the connection and the totals bucket are up."""
        return self._bucket is not None and self._client is not None and self._client.is_connected

    async def close(self) -> None:
        """Close the connection, if it was ever opened."""
        if self._client is not None and not self._client.is_closed:
            await self._client.close()
