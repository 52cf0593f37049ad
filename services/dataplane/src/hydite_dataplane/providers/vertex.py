"""Google Vertex AI as a provider: Gemini models (publisher google) over generateContent and
streamGenerateContent, embeddings over predict, and Claude models (publisher anthropic) over
rawPredict and streamRawPredict. The Gemini and Anthropic translations are reused as they are; what
changes is the URL (project, location, publisher), the auth (a Google bearer token that
upstream.google_auth adds after the call is built) and, for Claude, the body (no `model`, an
`anthropic_version` of Vertex's own).

Deployment settings (litellm_params, LiteLLM's names): `vertex_project` (required),
`vertex_location` (default us-central1; `global`, `us` and `eu` have hosts of their own),
`vertex_credentials` (see google_auth) and `vertex_publisher` to override the publisher picked from
the model's name. `api_base` replaces the host (private endpoints, tests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import GEMINI_EMBEDDING_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic import AnthropicChat, AnthropicMessages, count_tokens_call
from hydite_dataplane.providers.anthropic_request import anthropic_headers, to_anthropic
from hydite_dataplane.providers.base import PLAIN_EVENT, OperationAdapter, StreamEventInfo, StreamTranslator
from hydite_dataplane.providers.gemini import (
    GeminiChat,
    embedding_inputs,
    embedding_list,
    estimated_embedding_tokens,
)
from hydite_dataplane.providers.gemini_request import gemini_request
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import NO_USAGE, InferenceRequest, TokenUsage
from hydite_dataplane.upstream.transport import UpstreamCall

GOOGLE = "google"
ANTHROPIC = "anthropic"
PUBLISHERS = (GOOGLE, ANTHROPIC)
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_LOCATION = "us-central1"
API_VERSION = "v1"
MULTI_REGION_HOSTS = {
    "global": "https://aiplatform.googleapis.com",
    "us": "https://aiplatform.us.rep.googleapis.com",
    "eu": "https://aiplatform.eu.rep.googleapis.com",
}
VERTEX_PARAMS = frozenset({"vertex_project", "vertex_location", "vertex_credentials", "vertex_publisher"})
"""Deployment settings of the gateway's own: never part of a request body."""
EMBEDDING_NATIVE_FIELDS = {"task_type": "task_type", "taskType": "task_type", "title": "title"}
"""Fields of a text-embedding instance a client (or deployment) may set, by either spelling."""

_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,127}")


@dataclass(frozen=True, slots=True)
class VertexPlace:
    """Where a deployment's model lives."""

    project: str
    location: str


def _setting(target: DeploymentTarget, name: str) -> str:
    value = target.extra_params.get(name)
    return value.strip() if isinstance(value, str) else ""


def vertex_place(target: DeploymentTarget) -> VertexPlace:
    """The deployment's project and location, checked (they become part of the URL)."""
    project = _setting(target, "vertex_project")
    location = _setting(target, "vertex_location") or DEFAULT_LOCATION
    if not _PROJECT.fullmatch(project):
        raise InvalidRequestError(
            f"deployment {target.deployment_id!r} needs litellm_params.vertex_project (a Google Cloud "
            "project id) to call Vertex AI",
            code="invalid_deployment_settings",
        )
    if not _LOCATION.fullmatch(location):
        raise InvalidRequestError(
            f"deployment {target.deployment_id!r} has a vertex_location that is not a Google Cloud "
            f"location: {location[:64]!r}",
            code="invalid_deployment_settings",
        )
    return VertexPlace(project, location)


def publisher_of(target: DeploymentTarget) -> str:
    """`vertex_publisher` when set, else by the model's name: claude* is Anthropic's, the rest Google's."""
    chosen = _setting(target, "vertex_publisher")
    if chosen:
        if chosen not in PUBLISHERS:
            raise InvalidRequestError(
                f"deployment {target.deployment_id!r}: vertex_publisher must be one of "
                f"{', '.join(PUBLISHERS)}",
                code="invalid_deployment_settings",
            )
        return chosen
    return ANTHROPIC if target.upstream_model.startswith("claude") else GOOGLE


def vertex_host(location: str) -> str:
    """The API host of a location: regional `{location}-aiplatform…`, or a multi-region's own."""
    return MULTI_REGION_HOSTS.get(location, f"https://{location}-aiplatform.googleapis.com")


def vertex_model_url(target: DeploymentTarget, publisher: str, method: str, model: str = "") -> str:
    """{host}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}
    (the deployment's model unless another is named); an api_base replaces the host (one that
    already ends with /v1 keeps a single one)."""
    place = vertex_place(target)
    base = (target.api_base or vertex_host(place.location)).rstrip("/")
    if not base.endswith(f"/{API_VERSION}"):
        base = f"{base}/{API_VERSION}"
    return (
        f"{base}/projects/{place.project}/locations/{place.location}/publishers/{publisher}"
        f"/models/{model or target.upstream_model}:{method}"
    )


def without_vertex_settings(target: DeploymentTarget) -> DeploymentTarget:
    """The deployment as the reused translations see it: no key (the bearer token is added
    later) and no Vertex settings among the parameters merged into bodies."""
    if not target.api_key and not VERTEX_PARAMS.intersection(target.extra_params):
        return target
    params = {k: v for k, v in target.extra_params.items() if k not in VERTEX_PARAMS}
    return replace(target, api_key="", extra_params=params)


def _json_headers(stream: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
    return headers


class VertexGeminiChat(GeminiChat):
    """Gemini chat completions on Vertex: the Gemini API's body, Vertex's URL."""

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        model_target = without_vertex_settings(target)
        params = model_target.extra_params
        body = gemini_request({**params, **request.body} if params else request.body, target.upstream_model)
        if request.stream:
            url = vertex_model_url(target, GOOGLE, "streamGenerateContent") + "?alt=sse"
        else:
            url = vertex_model_url(target, GOOGLE, "generateContent")
        return UpstreamCall("POST", url, _json_headers(request.stream), orjson.dumps(body))


def predict_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The text-embedding predict body: one instance per text, the dimensions as a parameter."""
    texts = embedding_inputs(body.get("input"))
    options = {field: body[name] for name, field in EMBEDDING_NATIVE_FIELDS.items() if name in body}
    request: dict[str, Any] = {"instances": [{"content": text, **options} for text in texts]}
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidRequestError("'dimensions' must be a positive integer", param="dimensions")
        request["parameters"] = {"outputDimensionality": dimensions}
    return request


def _predictions(body: Mapping[str, Any]) -> list[Any]:
    """The `embeddings` object of every prediction (None where a prediction has none)."""
    found = body.get("predictions")
    if not isinstance(found, list):
        return []
    return [p.get("embeddings") if isinstance(p, dict) else None for p in found]


def predict_token_count(body: Mapping[str, Any]) -> int:
    """The input tokens a predict answer reports (statistics.token_count of every prediction)."""
    total = 0
    for embedding in _predictions(body):
        statistics = embedding.get("statistics") if isinstance(embedding, dict) else None
        count = statistics.get("token_count") if isinstance(statistics, dict) else None
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0:
            total += int(count)
    return total


def predict_embedding_list(
    body: Mapping[str, Any], request_body: Mapping[str, Any], model: str
) -> dict[str, Any]:
    """The OpenAI embedding list for a predict answer (in the gateway's Gemini shape, so the
    encoding and usage rules are Gemini's)."""
    embeddings = [{"values": e.get("values") if isinstance(e, dict) else None} for e in _predictions(body)]
    tokens = predict_token_count(body)
    as_gemini: dict[str, Any] = {"embeddings": embeddings}
    if tokens:
        as_gemini["usageMetadata"] = {"promptTokenCount": tokens}
    return embedding_list(as_gemini, request_body, model)


class VertexEmbeddings:
    """Embeddings of Google's text-embedding and gemini-embedding models on predict: the method
    every one of them answers, several texts per call, each counted in statistics.token_count."""

    supported_params = GEMINI_EMBEDDING_PARAMS
    stream_usage_marker = b'"token_count"'

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        params = without_vertex_settings(target).extra_params
        body = predict_request({**params, **request.body} if params else request.body)
        url = vertex_model_url(target, GOOGLE, "predict")
        return UpstreamCall("POST", url, _json_headers(False), orjson.dumps(body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """The input tokens Vertex counted."""
        return TokenUsage(prompt_tokens=predict_token_count(body))

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """What the call is billed: Vertex's count, else the estimate the answer shows."""
        if body is None:
            return NO_USAGE
        reported = predict_token_count(body)
        return TokenUsage(prompt_tokens=reported or estimated_embedding_tokens(request.body))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The OpenAI embedding list."""
        model = request.deployment.upstream_model if request.deployment is not None else request.model
        return predict_embedding_list(body, request.body, model)

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """Embeddings do not stream."""
        return None

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Embeddings do not stream."""
        return PLAIN_EVENT


def vertex_anthropic_body(body: dict[str, Any]) -> bytes:
    """A Messages API body as rawPredict takes it: the model is in the URL, and the API version
    Vertex's own, in the body."""
    upstream = {k: v for k, v in body.items() if k != "model"}
    upstream["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return orjson.dumps(upstream)


def _anthropic_call(
    request: InferenceRequest, target: DeploymentTarget, body: dict[str, Any], betas: tuple[str, ...] = ()
) -> UpstreamCall:
    method = "streamRawPredict" if request.stream else "rawPredict"
    headers = anthropic_headers(without_vertex_settings(target), request.provider_headers, betas)
    headers.pop("anthropic-version", None)  # the version travels in the body on Vertex
    if request.stream:
        headers["Accept"] = "text/event-stream"
    return UpstreamCall(
        "POST", vertex_model_url(target, ANTHROPIC, method), headers, vertex_anthropic_body(body)
    )


class VertexAnthropicChat(AnthropicChat):
    """Chat completions answered by Claude on Vertex: Anthropic's translation and events."""

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """rawPredict / streamRawPredict with the translated body."""
        params = without_vertex_settings(target).extra_params
        translated = to_anthropic(
            {**params, **request.body},
            target.upstream_model,
            stream=request.stream,
            model_info=target.model_info,
        )
        return _anthropic_call(request, target, translated.body, translated.betas)


class VertexAnthropicMessages(AnthropicMessages):
    """The Messages API called in its own shape, on Claude on Vertex."""

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """rawPredict / streamRawPredict; deployment defaults under the client's fields."""
        params = without_vertex_settings(target).extra_params
        body = {**params, **request.body}
        if request.stream:
            body["stream"] = True
        return _anthropic_call(request, target, body)


COUNT_TOKENS_MODEL = "count-tokens"
"""Claude's token count on Vertex is a model of its own; the model counted for is in the body."""


def vertex_count_tokens_call(
    body: Mapping[str, Any], target: DeploymentTarget, provider_headers: Mapping[str, str]
) -> UpstreamCall:
    """Anthropic's count_tokens call for a Claude model on Vertex: POST count-tokens:rawPredict,
    the Messages body with its model and Vertex's anthropic_version."""
    direct = count_tokens_call(body, without_vertex_settings(target), provider_headers)
    upstream = {**orjson.loads(direct.body), "anthropic_version": VERTEX_ANTHROPIC_VERSION}
    headers = {k: v for k, v in direct.headers.items() if k != "anthropic-version"}
    url = vertex_model_url(target, ANTHROPIC, "rawPredict", COUNT_TOKENS_MODEL)
    return UpstreamCall("POST", url, headers, orjson.dumps(upstream))


def vertex_gemini_operations() -> dict[str, OperationAdapter]:
    """What a Vertex deployment of a Google model answers."""
    chat = VertexGeminiChat()
    return {
        "chat": chat,
        "embeddings": VertexEmbeddings(),
        "responses": responses_via_chat(chat),
        "messages": messages_via_chat(chat),
    }


def vertex_anthropic_operations() -> dict[str, OperationAdapter]:
    """What a Vertex deployment of a Claude model answers."""
    chat = VertexAnthropicChat()
    return {"chat": chat, "responses": responses_via_chat(chat), "messages": VertexAnthropicMessages()}
