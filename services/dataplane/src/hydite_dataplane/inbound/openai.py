"""Stage 1 (decode), OpenAI wire format: the JSON or multipart body, the requested model, stream
flags, tags, the end user, and the gateway's own options taken out of the body.

Values that reach the usage event are refused here with a 400 beyond the bounds in `usage.event`
(model names, also from the path and in fallbacks; `user`; `tags` and `metadata.tags`), and when
they hold a control character (NUL included): the client can be told, and billing never meets them.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import customer_name
from hydite_common.errors import InvalidRequestError
from hydite_common.http import read_json_object
from hydite_dataplane.inbound import InboundFormat
from hydite_dataplane.request import (
    NO_OPTIONS,
    Caller,
    GatewayOptions,
    InferenceRequest,
    UploadedFile,
    provider_headers,
)
from hydite_dataplane.routes import OPERATIONS, Operation, Route
from hydite_dataplane.usage.event import MAX_MODEL_CHARS, MAX_TAG_CHARS, MAX_TAGS, MAX_USER_CHARS

GATEWAY_FIELDS = frozenset(
    {
        "tags", "guardrails", "mock_response", "num_retries", "fallbacks", "context_window_fallbacks",
        "content_policy_fallbacks", "drop_params", "additional_drop_params",
    }
)  # fmt: skip
"""Fields a client may send for the gateway itself; they never reach a provider."""

MAX_NUM_RETRIES = 10

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def checked_text(value: str, param: str, limit: int) -> str:
    """value, if it is at most limit characters without a control character; else a 400."""
    if len(value) > limit:
        raise InvalidRequestError(
            f"'{param}' is too long: at most {limit} characters", code="string_above_max_length", param=param
        )
    # isprintable() is one fast scan; only a value it doubts is searched for control characters.
    if not value.isprintable() and _CONTROL.search(value) is not None:
        raise InvalidRequestError(f"'{param}' must not contain control characters", param=param)
    return value


def resolve_customer(caller: Caller, customer_id: str) -> pb.Customer | None:
    """The end user `user` names: the caller's team's, else its organization's, else a global one;
    another tenant's end user of the same id is never found."""
    customers = caller.snapshot.customers
    team_id = caller.key.team_id
    if team_id:
        customer = customers.get(customer_name(customer_id, team_id=team_id))
        if customer is not None:
            return customer
    if caller.organization_id:
        customer = customers.get(customer_name(customer_id, organization_id=caller.organization_id))
        if customer is not None:
            return customer
    return customers.get(customer_id)


def _names(value: Any, param: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(checked_text(v, param, MAX_MODEL_CHARS) for v in value if isinstance(v, str))


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
    drop_params = found.get("drop_params")
    return GatewayOptions(
        num_retries=retries,
        fallbacks=_names(found.get("fallbacks"), "fallbacks"),
        context_window_fallbacks=_names(found.get("context_window_fallbacks"), "context_window_fallbacks"),
        content_policy_fallbacks=_names(found.get("content_policy_fallbacks"), "content_policy_fallbacks"),
        guardrails=_names(found.get("guardrails"), "guardrails"),
        mock_response=str(mock_response) if mock_response else None,
        drop_params=drop_params if isinstance(drop_params, bool) else None,
        additional_drop_params=_names(found.get("additional_drop_params"), "additional_drop_params"),
    )


def request_tags(body: dict[str, Any], key_tags: list[str]) -> list[str]:
    """The key's tags, then the request's own (`tags`, else `metadata.tags`) that are new; more
    than MAX_TAGS, or a tag too long or with a control character, is a 400."""
    tags = body.get("tags")
    param = "tags"
    if tags is None:
        metadata = body.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        param = "metadata.tags"
    if not isinstance(tags, list) or not tags:
        return [*key_tags]
    if len(tags) > MAX_TAGS:
        raise InvalidRequestError(f"'{param}' may hold at most {MAX_TAGS} tags", param=param)
    asked = [checked_text(t, param, MAX_TAG_CHARS) for t in tags if isinstance(t, str)]
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
    except HttpProcessingError:
        # A part's headers that do not parse (aiohttp's InvalidHeader is no ValueError).
        raise InvalidRequestError(
            "the multipart body cannot be read: a part has malformed headers", code="invalid_multipart"
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


CUSTOMER_HEADERS = ("x-litellm-customer-id", "x-litellm-end-user-id")
"""Headers naming the end user, before any field of the body (LiteLLM's order)."""


def header_customer(http_request: web.Request) -> str:
    """The end user a header names ("" when none does), checked like the `user` field."""
    for name in CUSTOMER_HEADERS:
        value = http_request.headers.get(name)
        if value:
            return checked_text(value, name, MAX_USER_CHARS)
    return ""


async def decode(
    http_request: web.Request, route: Route, caller: Caller, request_id: str
) -> InferenceRequest:
    """The request as the gateway carries it (an unreadable body is a 400 here, before any
    accounting starts; the body's shape is checked by `requested_model`)."""
    operation = OPERATIONS[route.operation]
    body = await read_form(http_request) if operation.multipart else await read_json_object(http_request)
    tags = request_tags(body, list(caller.key.tags))
    options = gateway_options(body)
    user = body.get("user")
    customer_id = header_customer(http_request) or (
        checked_text(user, "user", MAX_USER_CHARS) if isinstance(user, str) else ""
    )
    model = body.get("model")
    if isinstance(model, str) and model:
        checked_text(model, "model", MAX_MODEL_CHARS)
    else:
        model = ""
    path_model = http_request.match_info.get("model")
    if path_model:
        checked_text(path_model, "model", MAX_MODEL_CHARS)
    return InferenceRequest(
        request_id=request_id,
        operation=route.operation,
        wire_format=route.wire_format,
        model=model or path_model or "",
        body=body,
        stream=operation.streams and body.get("stream") is True,
        caller=caller,
        start_time=time.time(),
        start_perf=time.perf_counter(),
        options=options,
        client_wants_stream_usage=_client_wants_usage(body),
        customer_id=customer_id,
        customer=resolve_customer(caller, customer_id) if customer_id else None,
        tags=tags,
        provider_headers=provider_headers(http_request.headers),
        route=route.path,
        client_ip=http_request.remote or "",
        body_bytes=http_request.content_length or 0,
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
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise InvalidRequestError("'stream_options' must be an object", param="stream_options")
    return model


OPENAI = InboundFormat(decode, requested_model)
"""The OpenAI wire format."""
