"""The Anthropic Messages API as a provider: chat completions translated to and from it (and the
Responses API over that), and Anthropic's own /v1/messages passed through.

The translation lives in `anthropic_request`, `anthropic_response` and `anthropic_stream`; this
module wires it into OperationAdapters.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.openai_params import ANTHROPIC_CHAT_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic_request import (
    anthropic_headers,
    json_answer_tool,
    messages_url,
    to_anthropic,
)
from hydite_dataplane.providers.anthropic_response import completion_from_message, token_usage
from hydite_dataplane.providers.anthropic_stream import (
    USAGE_MARKER,
    AnthropicChatStream,
    inspect_anthropic_event,
)
from hydite_dataplane.providers.base import OperationAdapter, StreamEventInfo, StreamTranslator
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.transport import UpstreamCall

MESSAGES_PARAMS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p",
        "top_k", "tools", "tool_choice", "thinking", "metadata", "service_tier", "container",
        "mcp_servers", "context_management", "output_config", "cache_control", "inference_geo", "speed",
        "diagnostics",
    }
)  # fmt: skip
"""The Messages API's own parameters, passed through as the client wrote them."""

COUNT_TOKENS_FIELDS = frozenset(
    {
        "messages", "system", "tools", "tool_choice", "thinking", "cache_control", "output_config",
        "speed", "mcp_servers", "context_management",
    }
)  # fmt: skip
"""What /v1/messages/count_tokens takes besides the model (deployment defaults outside it are not sent)."""


def _usage(body: Mapping[str, Any]) -> TokenUsage:
    return token_usage(body.get("usage"))


class AnthropicChat:
    """Chat completions answered by the Messages API."""

    supported_params = ANTHROPIC_CHAT_PARAMS
    stream_usage_marker = USAGE_MARKER

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """POST /v1/messages with the translated body; deployment defaults under the client's fields."""
        body = {**target.extra_params, **request.body}
        translated = to_anthropic(
            body, target.upstream_model, stream=request.stream, model_info=target.model_info
        )
        headers = anthropic_headers(target, request.provider_headers, translated.betas)
        return UpstreamCall("POST", messages_url(target), headers, orjson.dumps(translated.body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of a message."""
        return _usage(body)

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Usage of message_start and message_delta events."""
        return inspect_anthropic_event(event)

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The message as a chat.completion."""
        return completion_from_message(body, int(time.time()), json_answer_tool(request.body))

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator:
        """Messages events as chat chunks."""
        return AnthropicChatStream(
            answer_tool=json_answer_tool(request.body),
            include_usage=request.client_wants_stream_usage,
            created=int(time.time()),
        )


class AnthropicMessages:
    """The Messages API called in its own shape (a client of Hydite's /v1/messages): the body
    passes through with the provider's model name."""

    supported_params = MESSAGES_PARAMS
    stream_usage_marker = USAGE_MARKER

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """POST /v1/messages; deployment defaults under the client's fields."""
        body = {**target.extra_params, **request.body, "model": target.upstream_model}
        if request.stream:
            body["stream"] = True
        headers = anthropic_headers(target, request.provider_headers)
        return UpstreamCall("POST", messages_url(target), headers, orjson.dumps(body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of a message."""
        return _usage(body)

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Usage of message_start and message_delta events."""
        return inspect_anthropic_event(event)

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """Same wire format in and out."""
        return None

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Same wire format in and out."""
        return None


def count_tokens_call(
    body: Mapping[str, Any], target: DeploymentTarget, provider_headers: Mapping[str, str]
) -> UpstreamCall:
    """POST /v1/messages/count_tokens for a Messages API body, with the provider's model name."""
    defaults = {k: v for k, v in target.extra_params.items() if k in COUNT_TOKENS_FIELDS}
    upstream = {**defaults, **body, "model": target.upstream_model}
    headers = anthropic_headers(target, provider_headers)
    return UpstreamCall(
        "POST", messages_url(target, "/messages/count_tokens"), headers, orjson.dumps(upstream)
    )


def anthropic_operations() -> dict[str, OperationAdapter]:
    """Every operation an Anthropic deployment serves."""
    chat = AnthropicChat()
    return {"chat": chat, "responses": responses_via_chat(chat), "messages": AnthropicMessages()}
