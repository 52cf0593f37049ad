"""An operation answered by a chat adapter: the client's request shape is translated to OpenAI
chat completions and back (the front), and the chat adapter translates chat to its provider's wire
format (a back end such as Anthropic's or Gemini's) or passes it through (OpenAI-compatible).

The two translations compose: the back end's usage comes from the provider's own bytes; its
translated answer (or stream of chat chunks) is what the front turns into the client's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import OperationAdapter, StreamEventInfo, StreamTranslator
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.sse import data_of
from hydite_dataplane.upstream.transport import UpstreamCall


@dataclass(frozen=True, slots=True)
class ChatFront:
    """One client request shape, as pure functions to and from OpenAI chat completions."""

    supported_params: frozenset[str]
    to_chat: Callable[[dict[str, Any], str], dict[str, Any]]
    """(client body, provider model) -> chat completions body."""
    from_chat: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    """(client body, chat.completion) -> the client's answer."""
    stream: Callable[[dict[str, Any]], StreamTranslator]
    """(client body) -> a translator from chat chunk events to the client's events."""


class ChatChunkConsumer(Protocol):
    """Builds a client's stream from parsed chat chunks (stateful, per request)."""

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The client's events for one chat chunk."""
        ...

    def finish(self) -> list[bytes]:
        """The closing events once the chat stream ended ([DONE])."""
        ...


class ChatChunkEvents:
    """A StreamTranslator from chat SSE events to a consumer's: each chunk parsed and fed, [DONE]
    finishing it (an event that is not a JSON object is dropped)."""

    __slots__ = ("_consumer",)

    def __init__(self, consumer: ChatChunkConsumer) -> None:
        self._consumer = consumer

    def translate(self, event: bytes) -> list[bytes]:
        """The client's events for one chat event."""
        data = data_of(event)
        if data == b"[DONE]":
            return self._consumer.finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        return self._consumer.feed(chunk) if isinstance(chunk, dict) else []


class _Chained:
    """The back end's translator, then the front's, event by event."""

    __slots__ = ("_back", "_front")

    def __init__(self, back: StreamTranslator, front: StreamTranslator) -> None:
        self._back, self._front = back, front

    def translate(self, event: bytes) -> list[bytes]:
        """The client's events for one provider event."""
        return [
            out for chat_event in self._back.translate(event) for out in self._front.translate(chat_event)
        ]


class ViaChat:
    """An OperationAdapter made of a front (client shape <-> chat) over a chat adapter."""

    def __init__(self, front: ChatFront, chat: OperationAdapter) -> None:
        self._front = front
        self._chat = chat
        self.supported_params = front.supported_params
        self.stream_usage_marker = chat.stream_usage_marker
        batches = getattr(chat, "stream_batches", None)
        if batches is not None:  # the provider's own stream framing (see base.stream_event_batches)
            self.stream_batches = batches

    def _chat_request(self, request: InferenceRequest, model: str) -> InferenceRequest:
        # The back end always reports stream usage, so the front can bill and show it.
        return replace(request, body=self._front.to_chat(request.body, model), client_wants_stream_usage=True)

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The chat call that answers this request."""
        return self._chat.build_call(self._chat_request(request, target.upstream_model), target)

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage as the provider reported it."""
        return self._chat.usage_from_response(body)

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Usage of the provider's own events."""
        return self._chat.inspect_stream_event(event)

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The provider's answer as a chat completion, then in the client's shape."""
        model = request.deployment.upstream_model if request.deployment is not None else ""
        completion = self._chat.translate_response(self._chat_request(request, model), body)
        return self._front.from_chat(request.body, completion if completion is not None else body)

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator:
        """The provider's events as chat chunks, then as the client's events."""
        front = self._front.stream(request.body)
        model = request.deployment.upstream_model if request.deployment is not None else ""
        back = self._chat.stream_translator(self._chat_request(request, model))
        return front if back is None else _Chained(back, front)
