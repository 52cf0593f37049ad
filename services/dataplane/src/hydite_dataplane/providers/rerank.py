"""Rerank (Cohere's request and response shape) for Cohere and Jina upstreams. Pure translation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import RERANK_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import StreamEventInfo
from hydite_dataplane.providers.billed_units import search_units
from hydite_dataplane.providers.openai import USAGE_MARKER
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.transport import UpstreamCall

COHERE_API_BASE = "https://api.cohere.com"
JINA_API_BASE = "https://api.jina.ai"


def _documents(body: Mapping[str, Any]) -> list[str]:
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise InvalidRequestError("'documents' must be a non-empty array", param="documents")
    texts: list[str] = []
    for document in documents:
        if isinstance(document, str):
            texts.append(document)
        elif isinstance(document, dict) and isinstance(document.get("text"), str):
            texts.append(document["text"])
        else:
            raise InvalidRequestError("each document must be a string or {'text': ...}", param="documents")
    return texts


def _rerank_body(request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
    body = request.body
    if not isinstance(body.get("query"), str) or not body["query"]:
        raise InvalidRequestError("'query' must be a non-empty string", param="query")
    upstream: dict[str, Any] = {
        "model": target.upstream_model,
        "query": body["query"],
        "documents": _documents(body),
    }
    for name in ("top_n", "return_documents", "max_chunks_per_doc"):
        if body.get(name) is not None:
            upstream[name] = body[name]
    return {**target.extra_params, **upstream}


class _RerankBase:
    """What Cohere and Jina share: JSON in, Cohere-shaped JSON out, no streams."""

    supported_params = RERANK_PARAMS
    stream_usage_marker = USAGE_MARKER
    path = "/v1/rerank"
    default_base = COHERE_API_BASE

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """POST the rerank request with Bearer auth."""
        headers = {"Content-Type": "application/json"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        base = (target.api_base or self.default_base).rstrip("/")
        return UpstreamCall("POST", base + self.path, headers, orjson.dumps(_rerank_body(request, target)))

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Rerank never streams."""
        return StreamEventInfo()

    def stream_translator(self, request: InferenceRequest) -> None:
        """Rerank never streams."""
        return


class CohereRerank(_RerankBase):
    """Cohere's /v2/rerank: the client's shape already; search units are not tokens."""

    path = "/v2/rerank"

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Cohere bills search units, not tokens: the answer's billed units, else one for the query."""
        return TokenUsage(search_units=search_units(body))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """Cohere's response is the client's shape."""
        return None


class JinaRerank(_RerankBase):
    """Jina's /v1/rerank, answered in Cohere's shape."""

    default_base = JINA_API_BASE

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Jina reports total tokens of query and documents."""
        usage = body.get("usage")
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else 0
        return TokenUsage(prompt_tokens=int(tokens or 0))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """Results keep index and relevance_score (and the document when asked); usage goes to meta."""
        results = []
        for result in body.get("results") or []:
            item = {"index": result.get("index"), "relevance_score": result.get("relevance_score")}
            document = result.get("document")
            if document is not None:
                item["document"] = document if isinstance(document, dict) else {"text": document}
            results.append(item)
        tokens = self.usage_from_response(body).prompt_tokens
        return {
            "id": body.get("id") or f"rerank-{request.request_id}",
            "results": results,
            "meta": {"billed_units": {"total_tokens": tokens}},
        }
