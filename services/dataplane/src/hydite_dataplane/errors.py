"""Errors rendered in the wire format of the route that failed (OpenAI JSON today; Anthropic's
shape joins with /v1/messages), both as a response and as an event inside a started stream."""

from __future__ import annotations

from typing import Protocol

import orjson
from aiohttp import web

from hydite_common.errors import HyditeError
from hydite_common.http import error_response
from hydite_dataplane.upstream.sse import data_event


class ErrorRenderer(Protocol):
    """Renders gateway errors for one wire format."""

    def response(self, error: HyditeError) -> web.Response:
        """The error as a complete HTTP response (nothing sent yet)."""
        ...

    def stream_event(self, error: HyditeError) -> bytes:
        """The error as one SSE event (the status line is already sent)."""
        ...


class OpenAIErrorRenderer:
    """{"error": {message, type, code, param}} with the error's HTTP status."""

    def response(self, error: HyditeError) -> web.Response:
        """OpenAI error JSON."""
        return error_response(error)

    def stream_event(self, error: HyditeError) -> bytes:
        """OpenAI error object as an SSE data event."""
        return data_event(orjson.dumps(error.to_body()))


ERROR_RENDERERS: dict[str, ErrorRenderer] = {"openai": OpenAIErrorRenderer()}
