"""Unit tests of hydite_common.grpc_keepalive: the data plane's channel never pings the config
stream more often than the control plane's server permits."""

from __future__ import annotations

import pytest

from hydite_common.grpc_keepalive import (
    KEEPALIVE_SECONDS,
    GrpcKeepaliveSettings,
    client_channel_options,
    server_options,
)


@pytest.mark.parametrize("seconds", [0.001, 0.5, 1.0, 7.3, KEEPALIVE_SECONDS, 300.0, 7200.0])
def test_client_pings_no_more_often_than_the_server_permits(seconds: float) -> None:
    """The client's keepalive interval is at least the server's minimum ping interval, with room
    for a timer that fires early, and an idle stream keeps both ends pinging."""
    settings = GrpcKeepaliveSettings(grpc_keepalive_seconds=seconds)
    client = dict(client_channel_options(settings))
    server = dict(server_options(settings))
    assert client["grpc.keepalive_time_ms"] >= server["grpc.http2.min_ping_interval_without_data_ms"]
    assert client["grpc.keepalive_time_ms"] >= 2 * server["grpc.http2.min_ping_interval_without_data_ms"] - 1
    assert client["grpc.http2.max_pings_without_data"] == 0
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.http2.max_ping_strikes"] > 0


def test_defaults_ping_every_twenty_seconds_and_server_accepts_every_ten() -> None:
    """Out of the box: the stream is pinged every 20 s and the server accepts a ping every 10 s."""
    settings = GrpcKeepaliveSettings()
    assert dict(client_channel_options(settings))["grpc.keepalive_time_ms"] == 20_000
    assert dict(server_options(settings))["grpc.http2.min_ping_interval_without_data_ms"] == 10_000


def test_keepalive_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """HYDITE_GRPC_KEEPALIVE_SECONDS and its timeout set both ends' options."""
    monkeypatch.setenv("HYDITE_GRPC_KEEPALIVE_SECONDS", "0.5")
    monkeypatch.setenv("HYDITE_GRPC_KEEPALIVE_TIMEOUT_SECONDS", "2")
    settings = GrpcKeepaliveSettings()
    client = dict(client_channel_options(settings))
    assert client["grpc.keepalive_time_ms"] == 500
    assert client["grpc.keepalive_timeout_ms"] == 2000
    assert dict(server_options(settings))["grpc.http2.min_ping_interval_without_data_ms"] == 250


def test_keepalive_must_be_positive() -> None:
    """A zero interval (which gRPC reads as 'never') is refused."""
    with pytest.raises(ValueError, match="greater than 0"):
        GrpcKeepaliveSettings(grpc_keepalive_seconds=0)
