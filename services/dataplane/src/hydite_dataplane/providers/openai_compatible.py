"""The OpenAI-compatible provider family: every row of `hydite_common.provider_table` becomes the
OpenAI adapter's operations with the row's paths, auth header, stream usage and body quirks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import row_params
from hydite_common.provider_table import ProviderRow
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.billed_units import image_usage
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.multipart import OpenAIMultipartOperation
from hydite_dataplane.providers.openai import OpenAIOperation, usage_from_openai
from hydite_dataplane.providers.quirks import apply_quirks
from hydite_dataplane.providers.rerank import JinaRerank
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.transport import UpstreamCall

MULTIPART_OPERATIONS = frozenset({"transcriptions", "translations", "image_edits", "image_variations"})


def api_base_of(row: ProviderRow, target: DeploymentTarget) -> str:
    """The deployment's API base (the row's default was filled in when it was decoded)."""
    if not target.api_base:
        raise InvalidRequestError(
            f"deployment {target.deployment_id!r} of provider {row.name!r} names no api_base, "
            "which this provider needs",
            code="api_base_required",
        )
    return target.api_base.rstrip("/")


class CompatibleOperation(OpenAIOperation):
    """One JSON operation of an OpenAI-compatible provider: the row's path and auth, the body with
    the row's quirks, `stream_options` only where the provider reports usage when asked."""

    def __init__(self, row: ProviderRow, operation: str) -> None:
        super().__init__(
            row.paths[operation],
            row_params(row, operation),
            stream_usage_option=row.stream_usage == "include_usage",
        )
        self.row = row
        self.quirks = row.quirks_of(operation)

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request."""
        base = api_base_of(self.row, target)
        headers = {"Content-Type": "application/json"}
        if target.api_key:
            scheme = self.row.auth_scheme
            headers[self.row.auth_header] = f"{scheme} {target.api_key}" if scheme else target.api_key
        if request.stream:
            headers["Accept"] = "text/event-stream"
        body = self.upstream_body(request, target)
        return UpstreamCall("POST", base + self.path, headers, orjson.dumps(body))

    def upstream_body(self, request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
        """OpenAI's body for the call, then the row's quirks."""
        return apply_quirks(self.row, self.quirks, super().upstream_body(request, target))


class CompatibleImages(CompatibleOperation):
    """Image generation, billed as OpenAI's is (tokens when reported, else per image)."""

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """The answer's tokens and images, with the request's size and quality."""
        tokens = usage_from_openai(body.get("usage")) if body is not None else TokenUsage()
        return image_usage(request.body, body, tokens)


class RowRerank(JinaRerank):
    """Rerank in Jina's shape under a row's API base, with the row's rerank quirks (Voyage's top_k)
    and the answer's results read from the row's field, answered in Cohere's shape."""

    def __init__(self, row: ProviderRow) -> None:
        self.row = row
        self.path = row.paths["rerank"]
        self.quirks = row.quirks_of("rerank")
        self.supported_params = row_params(row, "rerank")

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """POST the rerank request with the row's auth."""
        call = super().build_call(request, replace(target, api_base=api_base_of(self.row, target)))
        body = apply_quirks(self.row, self.quirks, orjson.loads(call.body))
        headers = {"Content-Type": "application/json"}
        if target.api_key:
            scheme = self.row.auth_scheme
            headers[self.row.auth_header] = f"{scheme} {target.api_key}" if scheme else target.api_key
        return replace(call, headers=headers, body=orjson.dumps(body))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The row's results, in Cohere's shape."""
        results = body.get(self.row.rerank_results)
        return super().translate_response(
            request, {**body, "results": results if isinstance(results, list) else []}
        )


def _operation(row: ProviderRow, operation: str) -> OperationAdapter:
    path = row.paths[operation]
    if operation in MULTIPART_OPERATIONS:
        return OpenAIMultipartOperation(path, row_params(row, operation))
    if operation == "rerank":
        return RowRerank(row)
    if operation == "images":
        return CompatibleImages(row, operation)
    return CompatibleOperation(row, operation)


def compatible_operations(row: ProviderRow) -> dict[str, OperationAdapter]:
    """The row's operations; a provider with chat also answers the Responses and Messages APIs
    over it."""
    operations = {operation: _operation(row, operation) for operation in row.paths}
    chat = operations.get("chat")
    if chat is not None:
        operations.setdefault("responses", responses_via_chat(chat))
        operations.setdefault("messages", messages_via_chat(chat))
    return operations
