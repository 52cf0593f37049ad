"""Stage 1 (decode), OpenAI wire format: the JSON or multipart body, the requested model, stream
flags, tags, the end user, and the gateway's own options taken out of the body."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from hydite_common.errors import InvalidRequestError
from hydite_common.http import read_json_object
from hydite_dataplane.inbound import InboundFormat
from hydite_dataplane.request import NO_OPTIONS, Caller, GatewayOptions, InferenceRequest, UploadedFile
from hydite_dataplane.routes import OPERATIONS, Operation, Route

GATEWAY_FIELDS = frozenset(
    {
        "tags", "guardrails", "mock_response", "num_retries", "fallbacks", "context_window_fallbacks",
        "content_policy_fallbacks",
    }
)  # fmt: skip
"""Fields a client may send for the gateway itself; they never reach a provider."""

MAX_NUM_RETRIES = 10


def _names(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def gateway_options(body: dict[str, Any]) -> GatewayOptions:
    """Take the gateway's own fields out of body, as GatewayOptions (values of the wrong type are
    ignored, as a provider would never have seen them either)."""
    if GATEWAY_FIELDS.isdisjoint(body):
        return NO_OPTIONS
    found = {name: body.pop(name) for name in GATEWAY_FIELDS & body.keys()}
    retries = found.get("num_retries")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_NUM_RETRIES:
        retries = None
    mock_response = found.get("mock_response")
    return GatewayOptions(
        num_retries=retries,
        fallbacks=_names(found.get("fallbacks")),
        context_window_fallbacks=_names(found.get("context_window_fallbacks")),
        content_policy_fallbacks=_names(found.get("content_policy_fallbacks")),
        guardrails=_names(found.get("guardrails")),
        mock_response=str(mock_response) if mock_response else None,
    )


def request_tags(body: dict[str, Any], key_tags: list[str]) -> list[str]:
    """The key's tags, then the request's own (`tags`, else `metadata.tags`) that are new."""
    tags = body.get("tags")
    if tags is None:
        metadata = body.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
    asked = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    return [*key_tags, *(t for t in asked if t not in key_tags)]


async def read_form(http_request: web.Request) -> dict[str, Any]:
    """A multipart/form-data request as a dict: text fields as str, files as UploadedFile,
    repeated fields (image[]) as lists."""
    if not http_request.content_type.startswith("multipart/form-data"):
        raise InvalidRequestError("this route takes multipart/form-data", code="invalid_content_type")
    try:
        form = await http_request.post()
    except ValueError as exc:
        raise InvalidRequestError(
            f"the multipart body cannot be read: {exc}", code="invalid_multipart"
        ) from None
    body: dict[str, Any] = {}
    for name, value in form.items():
        item: Any = (
            UploadedFile(value.filename, value.content_type, value.file.read())
            if isinstance(value, web.FileField)
            else str(value)
        )
        if name in body:
            body[name] = [*body[name], item] if isinstance(body[name], list) else [body[name], item]
        else:
            body[name] = item
    return body


def _client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def decode(
    http_request: web.Request, route: Route, caller: Caller, request_id: str
) -> InferenceRequest:
    """The request as the gateway carries it (an unreadable body is a 400 here, before any
    accounting starts; the body's shape is checked by `requested_model`)."""
    operation = OPERATIONS[route.operation]
    body = await read_form(http_request) if operation.multipart else await read_json_object(http_request)
    tags = request_tags(body, list(caller.key.tags))
    options = gateway_options(body)
    customer_id = body["user"] if isinstance(body.get("user"), str) else ""
    return InferenceRequest(
        request_id=request_id,
        operation=route.operation,
        wire_format=route.wire_format,
        model=str(body.get("model") or http_request.match_info.get("model") or ""),
        body=body,
        stream=operation.streams and body.get("stream") is True,
        caller=caller,
        start_time=time.time(),
        start_perf=time.perf_counter(),
        options=options,
        client_wants_stream_usage=_client_wants_usage(body),
        customer_id=customer_id,
        customer=caller.snapshot.customers.get(customer_id) if customer_id else None,
        tags=tags,
    )


def requested_model(http_request: web.Request, operation: Operation, body: dict[str, Any]) -> str:
    """The requested model (path beats body), after checking the body's basic shape."""
    model = http_request.match_info.get("model") or body.get("model") or operation.default_model
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "you must provide a model parameter", code="missing_required_parameter", param="model"
        )
    for name in operation.required:
        value = body.get(name)
        if value is None or value == "" or value == []:
            raise InvalidRequestError(
                f"you must provide a non-empty '{name}' parameter",
                code="missing_required_parameter",
                param=name,
            )
    if operation.name == "chat" and not isinstance(body["messages"], list):
        raise InvalidRequestError("'messages' must be an array", param="messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    return model


OPENAI = InboundFormat(decode, requested_model)
"""The OpenAI wire format."""
