"""The JetStream stream usage batches are published to (created by whoever comes first)."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from hydite_common.settings import BaseServiceSettings

DEDUP_WINDOW_SECONDS = 120.0
RETENTION_SECONDS = 7 * 24 * 3600.0


def usage_stream_name(settings: BaseServiceSettings) -> str:
    """Name of this deployment's usage stream, e.g. HYDITE_USAGE."""
    return settings.nats_name("USAGE")


def usage_subject(settings: BaseServiceSettings) -> str:
    """Subject usage batches are published on."""
    return settings.nats_subject("usage", "batch")


def usage_tally_subject(settings: BaseServiceSettings) -> str:
    """Subject the data planes' counts of emitted events are published on (in the usage stream)."""
    return settings.nats_subject("usage", "tally")


def dead_letter_stream_name(settings: BaseServiceSettings) -> str:
    """Name of the stream that keeps undecodable usage messages."""
    return settings.nats_name("USAGE_DEADLETTER")


def dead_letter_subject(settings: BaseServiceSettings) -> str:
    """Subject undecodable usage messages are republished on."""
    return settings.nats_subject("deadletter", "usage")


async def ensure_usage_streams(js: JetStreamContext, settings: BaseServiceSettings) -> None:
    """Create (or update) the usage stream and its dead-letter stream."""
    configs = [
        StreamConfig(
            name=usage_stream_name(settings),
            subjects=[settings.nats_subject("usage", ">")],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            duplicate_window=DEDUP_WINDOW_SECONDS,
            max_age=RETENTION_SECONDS,
        ),
        StreamConfig(
            name=dead_letter_stream_name(settings),
            subjects=[dead_letter_subject(settings)],
            storage=StorageType.FILE,
            max_age=30 * 24 * 3600.0,
        ),
    ]
    for config in configs:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
