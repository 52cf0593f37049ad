"""POST /v1/messages/count_tokens: Anthropic's token count of a Messages request, without calling
the model, answered `{"input_tokens": N}` and never billed (Anthropic bills no count either).

The caller and its end user are authorized for the model as an inference call would be. An
Anthropic deployment (or Claude on Vertex AI) counts with Anthropic's own count_tokens; any other
provider's count is made here, with `token_counter`'s tokenizer over the request as chat messages
(text, tool calls and tool definitions; images are not counted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from hydite_common.errors import UpstreamError
from hydite_common.http import json_response
from hydite_dataplane.authz import authorize_customer, authorize_model, in_customer_region
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.encodings import count_chat_tokens, count_tokens, encoding_for
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.inbound.anthropic import check_messages, checked_model, end_user, read_body
from hydite_dataplane.inbound.openai import gateway_options, resolve_customer
from hydite_dataplane.providers.anthropic import count_tokens_call
from hydite_dataplane.providers.messages_request import chat_messages, chat_tools
from hydite_dataplane.providers.vertex import ANTHROPIC, publisher_of, vertex_count_tokens_call
from hydite_dataplane.request import Caller, provider_headers
from hydite_dataplane.upstream.transport import UpstreamCall, call_timeouts

CountCall = Callable[[Mapping[str, Any], DeploymentTarget, Mapping[str, str]], UpstreamCall]


def native_count_call(target: DeploymentTarget) -> CountCall | None:
    """The call of the deployment's own count_tokens endpoint (Anthropic's, also for Claude on
    Vertex AI), or None where the gateway counts."""
    if target.provider == "anthropic":
        return count_tokens_call
    if target.provider == "vertex_ai" and publisher_of(target) == ANTHROPIC:
        return vertex_count_tokens_call
    return None


def local_count(body: dict[str, Any], upstream_model: str) -> int:
    """The request's input tokens by OpenAI's chat counting rule for upstream_model's encoding,
    tool calls' names and arguments and each tool definition counted as their text."""
    encoding, _ = encoding_for(upstream_model)
    messages = chat_messages(body)
    total = count_chat_tokens(encoding, messages)
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call["function"]
            total += count_tokens(encoding, str(function["name"] or "")) + count_tokens(
                encoding, function["arguments"]
            )
    for tool in chat_tools(body.get("tools")):
        total += count_tokens(encoding, orjson.dumps(tool["function"]).decode())
    return total


async def provider_count(
    gateway: Gateway,
    body: dict[str, Any],
    target: DeploymentTarget,
    headers: Mapping[str, str],
    count_call: CountCall = count_tokens_call,
) -> int:
    """The deployment's provider's own count of the request."""
    provider = gateway.providers[target.provider].for_deployment(target)
    timeouts = call_timeouts(
        False,
        target.timeout_seconds,
        target.stream_timeout_seconds,
        gateway.settings.upstream_timeout_seconds,
    )
    _, raw = await provider.answer(count_call(body, target, headers), target, timeouts)
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    count = answer.get("input_tokens") if isinstance(answer, dict) else None
    if not isinstance(count, int) or isinstance(count, bool):
        raise UpstreamError("the provider's token count has no input_tokens")
    return count


async def count_message_tokens(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """{"model", "messages", "system"?, "tools"?, ...} -> {"input_tokens": N}."""
    body = await read_body(request)
    gateway_options(body)  # the gateway's own fields never reach a provider
    model = checked_model(body)
    check_messages(body)
    customer_id = end_user(body)
    customer = resolve_customer(caller, customer_id) if customer_id else None
    deployments = authorize_model(caller, model)
    authorize_customer(customer, model)
    target = in_customer_region(customer, deployments)[0]
    count_call = native_count_call(target)
    if count_call is not None:
        count = await provider_count(gateway, body, target, provider_headers(request.headers), count_call)
    else:
        count = local_count(body, target.upstream_model)
    return json_response({"input_tokens": count})
