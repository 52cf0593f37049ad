"""Keepalive of the config stream, defined once for both ends: the data plane's channel pings no
more often than the control plane's server permits, so the server never ends the stream with
GOAWAY `too_many_pings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KEEPALIVE_SECONDS = 20.0
"""How often each end pings an idle config stream (a dead peer is noticed within this plus the timeout)."""
KEEPALIVE_TIMEOUT_SECONDS = 10.0
"""How long a ping may go unanswered before the connection counts as dead."""
MAX_PING_STRIKES = 2
"""Pings arriving sooner than permitted that the server tolerates before it sends GOAWAY
(gRPC's default; a misbehaving client is still cut off)."""

GrpcOptions = list[tuple[str, int]]


class GrpcKeepaliveSettings(BaseSettings):
    """The config stream's keepalive; both services read the same variables, so setting
    HYDITE_GRPC_KEEPALIVE_SECONDS on both keeps them in step."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    grpc_keepalive_seconds: float = Field(default=KEEPALIVE_SECONDS, gt=0)
    grpc_keepalive_timeout_seconds: float = Field(default=KEEPALIVE_TIMEOUT_SECONDS, gt=0)


def min_permitted_ping_interval_ms(keepalive_seconds: float) -> int:
    """The shortest gap between two pings without data the server accepts without a strike.

    Half the client's interval: a ping timer that fires a little early, or a ping that waited
    behind a write, still lands outside the window.
    """
    return max(1, round(keepalive_seconds * 1000) // 2)


def client_channel_options(settings: GrpcKeepaliveSettings) -> GrpcOptions:
    """Keepalive options of the data plane's channel to the control plane."""
    return [
        ("grpc.keepalive_time_ms", max(1, round(settings.grpc_keepalive_seconds * 1000))),
        ("grpc.keepalive_timeout_ms", max(1, round(settings.grpc_keepalive_timeout_seconds * 1000))),
        # The stream is a call, but say so: the channel must keep pinging whatever its state.
        ("grpc.keepalive_permit_without_calls", 1),
        # The default (2) stops the pings of an idle stream after two, and a dead control plane
        # would then go unnoticed until the next write.
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options(settings: GrpcKeepaliveSettings) -> GrpcOptions:
    """Keepalive options of the control plane's gRPC server: its own pings, and the client pings
    it accepts (gRPC's default accepts one every five minutes and strikes anything faster)."""
    return [
        ("grpc.keepalive_time_ms", max(1, round(settings.grpc_keepalive_seconds * 1000))),
        ("grpc.keepalive_timeout_ms", max(1, round(settings.grpc_keepalive_timeout_seconds * 1000))),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            min_permitted_ping_interval_ms(settings.grpc_keepalive_seconds),
        ),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
    ]
