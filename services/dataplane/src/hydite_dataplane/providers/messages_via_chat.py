"""Anthropic's Messages API on top of chat completions, for providers without a native Messages API
(OpenAI-compatible ones, the mock, Gemini through its chat adapter).

Pure translation, no I/O: a Messages request becomes a chat request (`messages_request`); a chat
completion becomes a `message` object (`messages_response`), its stream of chunks Anthropic's
stream events (`messages_stream`). This module composes them into the `messages` operation.

Choices where the two APIs differ:

- `cache_control`, `top_k`, `service_tier`, `speed`, `inference_geo`, `container` and other
  Anthropic-only hints are dropped: chat completions has nothing they could mean. Server tools
  (web search, code execution, ...), `mcp_servers`, and file or PDF-url sources need Anthropic
  itself and are a 400 naming the parameter.
- Text-only content becomes one string (blocks joined by a newline), which every
  OpenAI-compatible server takes; mixed content becomes chat content parts.
- `thinking` and `redacted_thinking` blocks of earlier assistant turns are left out: chat
  requests have no standard field for them, and OpenAI-compatible servers refuse or ignore
  reasoning sent back. A `tool_result` with `is_error` reaches the model as "Error: " + its text;
  its images follow the tool messages in a user message (a tool message holds only text).
- `thinking` (or `output_config.effort`) becomes `reasoning_effort` by budget, and then
  `max_tokens` is sent as `max_completion_tokens`, which OpenAI's reasoning models require;
  `max_tokens` above the deployment's model_info `max_output_tokens` is lowered to it.
- A tool call whose arguments are not a JSON object comes back (non-stream) as the input
  `{"_raw_arguments": "<the arguments as sent>"}`, so nothing the model wrote is lost, and that
  input is sent back as the same raw arguments. A stream relays argument pieces as they come.
- A stop sequence is named (`stop_reason: stop_sequence`) only when the chat answer says which
  one matched (vLLM's choice `stop_reason`); otherwise a stop is `end_turn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.messages_request import to_chat_request
from hydite_dataplane.providers.messages_response import from_chat_response
from hydite_dataplane.providers.messages_stream import chat_to_messages_translator
from hydite_dataplane.providers.via_chat import ChatFront, ViaChat
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.upstream.transport import UpstreamCall

MESSAGES_PARAMS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
        "top_p", "tools", "tool_choice", "thinking", "metadata", "output_config",
    }
)  # fmt: skip
"""The Messages API parameters chat completions can honour."""


MESSAGES_FRONT = ChatFront(
    supported_params=MESSAGES_PARAMS,
    to_chat=to_chat_request,
    from_chat=from_chat_response,
    stream=chat_to_messages_translator,
)
"""Anthropic's Messages API over chat completions."""


def output_limit(model_info: Mapping[str, Any]) -> int | None:
    """The deployment's output token limit (model_info max_output_tokens, else max_tokens)."""
    for name in ("max_output_tokens", "max_tokens"):
        value = model_info.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class MessagesViaChat(ViaChat):
    """The Messages API over a chat adapter, max_tokens held to the deployment's output limit:
    Anthropic clients (Claude Code) ask for a Claude model's own limit, which a chat model behind
    the same name may not reach."""

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The chat call, max_tokens lowered to the deployment's output limit when above it."""
        limit = output_limit(target.model_info)
        asked = request.body.get("max_tokens")
        if limit is not None and isinstance(asked, int) and asked > limit:
            request = replace(request, body={**request.body, "max_tokens": limit})
        return super().build_call(request, target)


def messages_via_chat(chat: OperationAdapter) -> ViaChat:
    """The `messages` operation for a provider that only speaks chat completions."""
    return MessagesViaChat(MESSAGES_FRONT, chat)
