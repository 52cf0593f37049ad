"""OpenAI wire format: chat completions (also every OpenAI-compatible upstream)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.openai_params import (
    CHAT_PARAMS,
    COMPLETION_PARAMS,
    EMBEDDING_PARAMS,
    IMAGE_PARAMS,
    MODERATION_PARAMS,
    RESPONSES_PARAMS,
    SPEECH_PARAMS,
)
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import (
    DONE_EVENT,
    PLAIN_EVENT,
    StreamEventInfo,
    StreamTranslator,
    response_id_of,
)
from hydite_dataplane.providers.billed_units import image_usage, speech_usage
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.resources.ids import ResourceIdCodec, owner_of
from hydite_dataplane.upstream.sse import data_event, data_of
from hydite_dataplane.upstream.transport import UpstreamCall

DEFAULT_API_BASE = "https://api.openai.com/v1"


_DONE = b"data: [DONE]"
USAGE_MARKER = b'"usage"'


def usage_from_openai(usage: Any) -> TokenUsage:
    """TokenUsage from an OpenAI `usage` object (missing or null -> zeros)."""
    if not isinstance(usage, dict):
        return TokenUsage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    # Image generation reports input/output tokens, like the Responses API.
    return TokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def upstream_body(request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
    """The request body for the provider: deployment defaults under the client's fields,
    the provider's model name, and usage asked for in streams."""
    body = dict(target.extra_params)
    body.update(request.body)
    body["model"] = target.upstream_model
    if request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return body


def base_url(target: DeploymentTarget) -> str:
    """The deployment's API base without a trailing slash."""
    return (target.api_base or DEFAULT_API_BASE).rstrip("/")


class OpenAIOperation:
    """POST {api_base}{path} with Bearer auth: the body passes through with the provider's model name."""

    stream_usage_marker = USAGE_MARKER

    def __init__(
        self, path: str, supported_params: frozenset[str], *, stream_usage_option: bool = True
    ) -> None:
        self.path = path
        self.supported_params = supported_params
        self._stream_usage_option = stream_usage_option

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        headers = {"Content-Type": "application/json"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        if request.stream:
            headers["Accept"] = "text/event-stream"
        return UpstreamCall(
            "POST",
            f"{base_url(target)}{self.path}",
            headers,
            orjson.dumps(self.upstream_body(request, target)),
        )

    def upstream_body(self, request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
        """The JSON body sent upstream."""
        body = upstream_body(request, target)
        if not self._stream_usage_option:
            body.pop("stream_options", None)
        return body

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """Same wire format in and out: nothing to translate."""
        return None

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Same wire format in and out: events pass as they are."""
        return None

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of the response object (embeddings report prompt tokens only; moderations none)."""
        return usage_from_openai(body.get("usage"))

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Only events that mention usage are parsed; the rest pass as they are."""
        if event.startswith(_DONE):
            return DONE_EVENT
        if b'"usage"' not in event or b'"usage":null' in event or b'"usage": null' in event:
            return PLAIN_EVENT
        data = data_of(event)
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return PLAIN_EVENT
        if not isinstance(chunk, dict) or not isinstance(chunk.get("usage"), dict):
            return PLAIN_EVENT
        return StreamEventInfo(
            usage=usage_from_openai(chunk["usage"]),
            usage_only=not chunk.get("choices"),
            response_id=response_id_of(chunk),
        )


class OpenAIChat(OpenAIOperation):
    """Chat completions."""

    def __init__(self) -> None:
        super().__init__("/chat/completions", CHAT_PARAMS)


class OpenAIImages(OpenAIOperation):
    """Image generation: billed by the tokens the answer reports (gpt-image), else per image of
    the size and quality asked for."""

    def __init__(self) -> None:
        super().__init__("/images/generations", IMAGE_PARAMS)

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """The answer's tokens and images, with the request's size and quality."""
        tokens = usage_from_openai(body.get("usage")) if body is not None else TokenUsage()
        return image_usage(request.body, body, tokens)


class OpenAISpeech(OpenAIOperation):
    """Text to speech: the answer is audio bytes, billed by the characters of the input."""

    def __init__(self) -> None:
        super().__init__("/audio/speech", SPEECH_PARAMS)

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """The characters of the request's input."""
        return speech_usage(request.body)


def usage_from_responses_api(usage: Any) -> TokenUsage:
    """TokenUsage from a Responses API `usage` object."""
    if not isinstance(usage, dict):
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
    )


class ResponseIdRewriter:
    """A StreamTranslator that gives every response object in a Responses stream its gateway id."""

    def __init__(self, ids: ResourceIdCodec, deployment_id: str, owner: str) -> None:
        self._ids, self._deployment_id, self._owner = ids, deployment_id, owner

    def translate(self, event: bytes) -> list[bytes]:
        """The event, with response.id rewritten where the event carries a response object."""
        if b'"response":{' not in event and b'"response": {' not in event:
            return [event]
        try:
            payload = orjson.loads(data_of(event))
        except orjson.JSONDecodeError:
            return [event]
        response = payload.get("response") if isinstance(payload, dict) else None
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return [event]
        response["id"] = self._ids.encode(response["id"], self._deployment_id, self._owner)
        head = b"".join(line + b"\n" for line in event.split(b"\n") if line.startswith(b"event:"))
        return [head + data_event(orjson.dumps(payload))]


class OpenAIResponses(OpenAIOperation):
    """The native Responses API: usage sits in the response, and in the stream's completion event.

    The provider stores the response; the client gets a gateway id that names the deployment and
    the owner, so GET/DELETE can find it again and nobody else can.
    """

    def __init__(self, ids: ResourceIdCodec) -> None:
        super().__init__("/responses", RESPONSES_PARAMS, stream_usage_option=False)
        self.ids = ids

    def _owner_and_deployment(self, request: InferenceRequest) -> tuple[str, str]:
        assert request.deployment is not None
        return owner_of(request.key, request.key_hash), request.deployment.deployment_id

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The response with its gateway id."""
        if not isinstance(body.get("id"), str):
            return None
        owner, deployment_id = self._owner_and_deployment(request)
        return {**body, "id": self.ids.encode(body["id"], deployment_id, owner)}

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Rewrites response ids in the stream."""
        owner, deployment_id = self._owner_and_deployment(request)
        return ResponseIdRewriter(self.ids, deployment_id, owner)

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of a response object."""
        return usage_from_responses_api(body.get("usage"))

    def stored_call(self, method: str, path: str, target: DeploymentTarget) -> UpstreamCall:
        """A call on a stored response (GET, DELETE, its input items), path relative to the API base."""
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        return UpstreamCall(method, base_url(target) + path, headers, b"")

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Only the terminal events (completed, incomplete, failed) carry usage."""
        if b'"usage":{' not in event and b'"usage": {' not in event:
            return PLAIN_EVENT
        data = data_of(event)
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return PLAIN_EVENT
        response = payload.get("response") if isinstance(payload, dict) else None
        if not isinstance(response, dict):
            return PLAIN_EVENT
        return StreamEventInfo(
            usage=usage_from_responses_api(response.get("usage")), response_id=response_id_of(response)
        )


def openai_operations(ids: ResourceIdCodec) -> dict[str, OpenAIOperation]:
    """Every JSON operation of the OpenAI wire format."""
    return {
        "responses": OpenAIResponses(ids),
        "chat": OpenAIChat(),
        "completions": OpenAIOperation("/completions", COMPLETION_PARAMS),
        "embeddings": OpenAIOperation("/embeddings", EMBEDDING_PARAMS),
        "moderations": OpenAIOperation("/moderations", MODERATION_PARAMS),
        "images": OpenAIImages(),
        "speech": OpenAISpeech(),
    }
