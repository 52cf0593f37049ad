"""Stage 1 (decode): a client's request, in its wire format, into the internal InferenceRequest.
One module per inbound wire format (OpenAI, Anthropic's Messages API), chosen by the route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hydite_dataplane.request import Caller, InferenceRequest
from hydite_dataplane.routes import Operation, Route


@dataclass(frozen=True, slots=True)
class InboundFormat:
    """How one wire format's requests are decoded and checked."""

    decode: Callable[[web.Request, Route, Caller, str], Awaitable[InferenceRequest]]
    """The request (its body read and split from the gateway's options), given its caller and id."""
    requested_model: Callable[[web.Request, Operation, dict[str, Any]], str]
    """The model asked for, once the body's shape is checked (a failure here is accounted)."""
