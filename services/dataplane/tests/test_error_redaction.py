"""Errors built from a provider's answer carry none of the deployment's credentials, whatever their
shape, in any field, whether they come as a response or as an event inside a stream."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.upstream.errors import (
    deployment_credentials,
    error_from_upstream,
    redacted_stream_event,
)

TargetBuilder = Callable[..., DeploymentTarget]
KEY = "AbC.dEf/GhI+jKl=0123456789"
"""No sk- prefix, with the characters the key pattern does not know."""


def _echoing_body(key: str) -> bytes:
    return orjson.dumps(
        {"error": {"message": f"Incorrect API key provided: {key}.", "code": key, "param": f"Bearer {key}"}}
    )


def test_the_deployments_key_is_taken_out_of_every_field(make_target: TargetBuilder) -> None:
    """A key echoed in message, code and param is in none of them, nor in the headers passed on."""
    target = make_target(api_key=KEY)
    for status in (400, 401, 429, 500):
        error = error_from_upstream(
            status,
            _echoing_body(KEY),
            {"retry-after": KEY},
            credentials=deployment_credentials(target),
        )
        rendered = orjson.dumps(error.to_body()) + orjson.dumps(error.headers)
        assert KEY.encode() not in rendered, status
        assert b"Incorrect API key provided" in rendered
        assert error.param == "Bearer [redacted]"


def test_a_text_body_and_a_key_beyond_the_cut_are_redacted(make_target: TargetBuilder) -> None:
    """A non-JSON error body is redacted before it is cut, so no half key is left at the cut."""
    credentials = deployment_credentials(make_target(api_key=KEY))
    body = b"x" * 1990 + KEY.encode() + b" and " + KEY.encode()
    error = error_from_upstream(502, body, {}, credentials=credentials)
    assert KEY[:10] not in error.message and "[redacted]" in error.message


def test_credential_parameters_are_redacted_and_placeholders_are_not(make_target: TargetBuilder) -> None:
    """Other credential-named parameters count as the deployment's own; a placeholder key does not."""
    target = make_target(
        api_key="x", extra_params={"aws_secret_access_key": "wJalr/XUtnF+EMI", "top_p": "0.5"}
    )
    assert deployment_credentials(target) == ("wJalr/XUtnF+EMI",)
    error = error_from_upstream(
        403, b'{"error": {"message": "signature for wJalr/XUtnF+EMI"}}', {}, credentials=("wJalr/XUtnF+EMI",)
    )
    assert "wJalr" not in error.message


def test_error_stream_events_are_redacted_and_others_left_alone(make_target: TargetBuilder) -> None:
    """`data: {"error": ...}` and `event: error` events lose the key; a content event is the same bytes."""
    credentials = deployment_credentials(make_target(api_key=KEY))
    data_error = b"data: " + _echoing_body(KEY) + b"\n\n"
    typed = b"event: error\ndata: " + orjson.dumps({"type": "error", "message": f"bad key {KEY}"}) + b"\n\n"
    escaped = b"data: " + _echoing_body(KEY).replace(b"/", b"\\/") + b"\n\n"
    for event in (data_error, typed, escaped):
        cleaned = redacted_stream_event(event, credentials)
        assert KEY.encode() not in cleaned and cleaned.endswith(b"\n\n")
        assert b"[redacted]" in cleaned
    assert redacted_stream_event(typed, credentials).startswith(b"event: error\ndata: {")
    content = b'data: {"choices": [{"delta": {"content": "an \\"error\\" happened"}}], "error": null}\n\n'
    assert redacted_stream_event(content, credentials) is content
