"""Stage 1 (decode), Anthropic's Messages API: the JSON body, the requested model, the stream flag,
tags, the end user (`metadata.user_id`) and the gateway's own options taken out of the body.

The values that reach the usage event are bounded as `inbound.openai` bounds them; every refusal
is rendered in Anthropic's error shape by the route's wire format.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from hydite_common.errors import InvalidRequestError, PayloadTooLargeError
from hydite_common.http import read_json_object
from hydite_dataplane.inbound import InboundFormat
from hydite_dataplane.inbound.openai import (
    checked_text,
    gateway_options,
    header_customer,
    request_tags,
    resolve_customer,
)
from hydite_dataplane.request import Caller, InferenceRequest, provider_headers
from hydite_dataplane.routes import Operation, Route
from hydite_dataplane.usage.event import MAX_MODEL_CHARS, MAX_USER_CHARS


async def read_body(http_request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; one past the size limit is a 413 (Anthropic's request_too_large)."""
    try:
        return await read_json_object(http_request)
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeError("request body exceeds the configured limit") from None


def end_user(body: dict[str, Any]) -> str:
    """`metadata.user_id`, checked like OpenAI's `user` ("" when there is none)."""
    metadata = body.get("metadata")
    if metadata is None:
        return ""
    if not isinstance(metadata, dict):
        raise InvalidRequestError("metadata: Input should be an object", param="metadata")
    user_id = metadata.get("user_id")
    if user_id is None:
        return ""
    if not isinstance(user_id, str):
        raise InvalidRequestError("metadata.user_id: Input should be a string", param="metadata.user_id")
    return checked_text(user_id, "metadata.user_id", MAX_USER_CHARS)


def body_model(body: dict[str, Any]) -> str:
    """The body's model, checked ("" when it names none: `requested_model` refuses that)."""
    model = body.get("model")
    if isinstance(model, str) and model:
        return checked_text(model, "model", MAX_MODEL_CHARS)
    return ""


async def decode(
    http_request: web.Request, route: Route, caller: Caller, request_id: str
) -> InferenceRequest:
    """The request as the gateway carries it (its shape is checked by `requested_model`)."""
    body = await read_body(http_request)
    tags = request_tags(body, list(caller.key.tags))
    options = gateway_options(body)
    customer_id = header_customer(http_request) or end_user(body)
    return InferenceRequest(
        request_id=request_id,
        operation=route.operation,
        wire_format=route.wire_format,
        model=body_model(body),
        body=body,
        stream=body.get("stream") is True,
        caller=caller,
        start_time=time.time(),
        start_perf=time.perf_counter(),
        options=options,
        # Anthropic's events always carry usage (message_start and message_delta).
        client_wants_stream_usage=True,
        customer_id=customer_id,
        customer=resolve_customer(caller, customer_id) if customer_id else None,
        tags=tags,
        provider_headers=provider_headers(http_request.headers),
        route=route.path,
        client_ip=http_request.remote or "",
        body_bytes=http_request.content_length or 0,
    )


def checked_model(body: dict[str, Any]) -> str:
    """The model the body names, bounded, or Anthropic's 400 for a missing one."""
    model = body_model(body)
    if not model:
        raise InvalidRequestError("model: Field required", code="missing_required_parameter", param="model")
    return model


def check_messages(body: dict[str, Any]) -> None:
    """`messages` is a non-empty array, or a 400."""
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequestError(
            "messages: Field required", code="missing_required_parameter", param="messages"
        )
    if not isinstance(messages, list):
        raise InvalidRequestError("messages: Input should be a valid list", param="messages")
    if not messages:
        raise InvalidRequestError("messages: at least one message is required", param="messages")


def requested_model(http_request: web.Request, operation: Operation, body: dict[str, Any]) -> str:
    """The requested model, after checking what Anthropic requires: model, messages (an array) and
    max_tokens (a positive integer); `stream`, when given, is a boolean."""
    model = checked_model(body)
    check_messages(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequestError(
            "max_tokens: Field required", code="missing_required_parameter", param="max_tokens"
        )
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        raise InvalidRequestError("max_tokens: Input should be a positive integer", param="max_tokens")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("stream: Input should be a valid boolean", param="stream")
    return model


ANTHROPIC = InboundFormat(decode, requested_model)
"""Anthropic's Messages API."""
