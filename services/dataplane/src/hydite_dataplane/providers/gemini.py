"""The Google Gemini API (generativelanguage.googleapis.com): chat completions over generateContent
and streamGenerateContent, embeddings over embedContent and batchEmbedContents, the Responses API
over chat. The key goes in the `x-goog-api-key` header, never in the URL.

Translation lives in gemini_request (request), gemini_response (answer, usage) and gemini_stream
(events); this module builds the calls and holds the embeddings translation.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import GEMINI_CHAT_PARAMS, GEMINI_EMBEDDING_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import (
    MAX_RESPONSE_ID_CHARS,
    PLAIN_EVENT,
    OperationAdapter,
    StreamEventInfo,
    StreamTranslator,
)
from hydite_dataplane.providers.gemini_request import gemini_request, model_url, native_fields
from hydite_dataplane.providers.gemini_response import chat_completion, prompt_blocked, token_usage
from hydite_dataplane.providers.gemini_stream import GeminiChatStream
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import NO_USAGE, InferenceRequest, TokenUsage
from hydite_dataplane.upstream.sse import data_of
from hydite_dataplane.upstream.transport import UpstreamCall

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
USAGE_MARKER = b'"usageMetadata"'

EMBEDDING_NATIVE_FIELDS = ("taskType", "title")


def _headers(target: DeploymentTarget, stream: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    if stream:
        headers["Accept"] = "text/event-stream"
    return headers


def _url(target: DeploymentTarget, method: str) -> str:
    return model_url(
        target.api_base or DEFAULT_API_BASE,
        target.api_version or DEFAULT_API_VERSION,
        target.upstream_model,
        method,
    )


def _merged_body(request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
    """The client's body over the deployment's own parameters."""
    return {**target.extra_params, **request.body} if target.extra_params else request.body


def _served_model(request: InferenceRequest) -> str:
    return request.deployment.upstream_model if request.deployment is not None else request.model


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class GeminiChat:
    """Chat completions on generateContent / streamGenerateContent?alt=sse."""

    supported_params = GEMINI_CHAT_PARAMS
    stream_usage_marker = USAGE_MARKER

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        body = gemini_request(_merged_body(request, target), target.upstream_model)
        url = (
            _url(target, "streamGenerateContent") + "?alt=sse"
            if request.stream
            else _url(target, "generateContent")
        )
        return UpstreamCall("POST", url, _headers(target, request.stream), orjson.dumps(body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of a GenerateContentResponse."""
        return token_usage(body.get("usageMetadata"))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The chat.completion."""
        return chat_completion(
            body, model=_served_model(request), created=int(time.time()), fallback_id=_completion_id()
        )

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Gemini events as chat completion chunks."""
        count = request.body.get("n")
        return GeminiChatStream(
            model=_served_model(request),
            created=int(time.time()),
            fallback_id=_completion_id(),
            candidates=count if isinstance(count, int) and not isinstance(count, bool) else 1,
            wants_usage=request.client_wants_stream_usage,
        )

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Every chunk reports usage so far; it is final once a candidate (or the prompt) finished."""
        if USAGE_MARKER not in event:
            return PLAIN_EVENT
        try:
            chunk = orjson.loads(data_of(event))
        except orjson.JSONDecodeError:
            return PLAIN_EVENT
        if not isinstance(chunk, dict) or not isinstance(chunk.get("usageMetadata"), dict):
            return PLAIN_EVENT
        candidates = chunk.get("candidates")
        finished = prompt_blocked(chunk) or (
            isinstance(candidates, list)
            and any(isinstance(c, dict) and c.get("finishReason") for c in candidates)
        )
        usage = token_usage(chunk["usageMetadata"])
        if usage == NO_USAGE:
            return PLAIN_EVENT  # usageMetadata without counts (trafficType only): nothing to bill yet
        response_id = chunk.get("responseId")
        return StreamEventInfo(
            usage=usage,
            response_id=response_id[:MAX_RESPONSE_ID_CHARS] if isinstance(response_id, str) else "",
            usage_final=finished,
        )


def embedding_inputs(value: Any) -> list[str]:
    """The texts of an embeddings `input` (Gemini embeds text, not token arrays)."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequestError(
            "'input' must be a non-empty string or array of non-empty strings for Gemini (not tokens)",
            param="input",
        )
    return texts


def embed_request(body: Mapping[str, Any], model: str) -> tuple[str, dict[str, Any]]:
    """(method, request body): embedContent for one text, batchEmbedContents for several, each
    request naming its model as batchEmbedContents requires."""
    texts = embedding_inputs(body.get("input"))
    options = native_fields(body, EMBEDDING_NATIVE_FIELDS)
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidRequestError("'dimensions' must be a positive integer", param="dimensions")
        options["outputDimensionality"] = dimensions
    requests = [{"content": {"parts": [{"text": text}]}, **options} for text in texts]
    if len(requests) == 1:
        return "embedContent", requests[0]
    name = f"models/{model.removeprefix('models/')}"
    return "batchEmbedContents", {"requests": [{"model": name, **r} for r in requests]}


def estimated_embedding_tokens(body: Mapping[str, Any]) -> int:
    """What embedding the input costs when Gemini reports no usage: a quarter token per
    character, at least one per text (the gateway's estimate everywhere)."""
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return sum(max(1, len(t) // 4) for t in texts if isinstance(t, str))


def _encoded(values: list[float]) -> str:
    """Floats as OpenAI's base64 encoding_format sends them: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def embedding_list(body: Mapping[str, Any], request_body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The OpenAI embedding list for an embedContent or batchEmbedContents answer."""
    found = body.get("embeddings")
    embeddings = found if isinstance(found, list) else [body.get("embedding")]
    as_base64 = request_body.get("encoding_format") == "base64"
    data = []
    for index, embedding in enumerate(embeddings):
        values = embedding.get("values") if isinstance(embedding, dict) else None
        vector = [float(v) for v in values] if isinstance(values, list) else []
        data.append(
            {"object": "embedding", "index": index, "embedding": _encoded(vector) if as_base64 else vector}
        )
    reported = token_usage(body.get("usageMetadata")).prompt_tokens
    prompt = reported or estimated_embedding_tokens(request_body)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


class GeminiEmbeddings:
    """Embeddings on embedContent (one input) or batchEmbedContents (several)."""

    supported_params = GEMINI_EMBEDDING_PARAMS
    stream_usage_marker = USAGE_MARKER

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        method, body = embed_request(_merged_body(request, target), target.upstream_model)
        return UpstreamCall("POST", _url(target, method), _headers(target, False), orjson.dumps(body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """The input tokens Gemini reports (newer embedding models do)."""
        return token_usage(body.get("usageMetadata"))

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """What the call is billed: Gemini's count, else the estimate the answer shows."""
        if body is None:
            return NO_USAGE
        reported = self.usage_from_response(body)
        if reported.prompt_tokens:
            return reported
        return TokenUsage(prompt_tokens=estimated_embedding_tokens(request.body))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The OpenAI embedding list."""
        return embedding_list(body, request.body, _served_model(request))

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Embeddings do not stream."""
        return None

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Embeddings do not stream."""
        return PLAIN_EVENT


def gemini_operations() -> dict[str, OperationAdapter]:
    """Every operation a Gemini deployment answers."""
    chat = GeminiChat()
    return {"chat": chat, "embeddings": GeminiEmbeddings(), "responses": responses_via_chat(chat)}
