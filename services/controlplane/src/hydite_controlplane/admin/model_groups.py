"""Model groups as LiteLLM's /model_group/info describes them (pure): one entry per public model
name, from its deployments' providers, prices, limits and model_info.

The OpenAI parameters per mode are the ones the data plane's adapters take, less the request's
own subject (model, messages, input, ...); a cross-service test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydite_common.pricing import builtin_price
from hydite_controlplane.config.builder import UnbuildableRow, deployment_price
from hydite_controlplane.models.deployments import DeploymentRow

_CHAT = (
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens",
    "n", "presence_penalty", "response_format", "seed", "stop", "stream", "stream_options", "temperature",
    "top_p", "tools", "tool_choice", "parallel_tool_calls", "user", "reasoning_effort", "metadata",
    "modalities", "audio", "prediction", "service_tier", "store", "web_search_options", "functions",
    "function_call",
)  # fmt: skip
_COMPLETION = (
    "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
    "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
)  # fmt: skip

_IMAGE = (
    "n", "size", "quality", "style", "response_format", "user", "background", "moderation",
    "output_format", "output_compression",
)  # fmt: skip
_TRANSCRIPTION = (
    "language", "prompt", "response_format", "temperature", "timestamp_granularities[]", "include[]",
    "chunking_strategy", "stream",
)  # fmt: skip

SUPPORTED_OPENAI_PARAMS: dict[str, tuple[str, ...]] = {
    "chat": _CHAT,
    "completion": _COMPLETION,
    "embedding": ("encoding_format", "dimensions", "user"),
    "image_generation": _IMAGE,
    "audio_speech": ("voice", "instructions", "response_format", "speed", "stream_format"),
    "audio_transcription": _TRANSCRIPTION,
    "moderation": (),
    "rerank": ("top_n", "return_documents", "max_chunks_per_doc"),
}
"""LiteLLM mode -> the OpenAI parameters a call in that mode may carry."""

RERANK_PROVIDERS = frozenset({"cohere", "jina"})
CAPABILITIES = (
    "supports_parallel_function_calling", "supports_vision", "supports_function_calling",
    "supports_web_search", "supports_reasoning", "supports_response_schema", "supports_prompt_caching",
    "supports_audio_input", "supports_audio_output", "supports_pdf_input", "supports_tool_choice",
)  # fmt: skip
"""Capabilities a deployment's model_info may claim (false unless one of the group's does)."""


def billed_prices(row: DeploymentRow) -> tuple[float, float]:
    """What the data plane bills a call to this deployment per token (input, output): its own
    prices (litellm_params', else model_info's), else the model's list price."""
    try:
        own = (deployment_price(row, "input_cost_per_token"), deployment_price(row, "output_cost_per_token"))
    except UnbuildableRow:
        own = (0.0, 0.0)  # a stored price the builder refuses (the deployment is quarantined)
    if any(own):
        return own
    listed = builtin_price(row.upstream_model)
    return listed.input_per_token, listed.output_per_token


def _first(rows: Sequence[DeploymentRow], name: str) -> Any:
    return next((r.model_info[name] for r in rows if r.model_info.get(name) is not None), None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _total(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def group_mode(rows: Sequence[DeploymentRow]) -> str:
    """The group's LiteLLM mode: its model_info's, else rerank for rerank providers, else chat."""
    mode = _first(rows, "mode")
    if isinstance(mode, str) and mode:
        return mode
    return "rerank" if all(r.provider in RERANK_PROVIDERS for r in rows) else "chat"


def model_group_info(name: str, rows: Sequence[DeploymentRow]) -> dict[str, Any]:
    """One entry of /model_group/info for the deployments of model `name` (at least one)."""
    prices = [billed_prices(r) for r in rows]
    mode = group_mode(rows)
    info: dict[str, Any] = {
        "model_group": name,
        "providers": sorted({r.provider for r in rows}),
        "max_input_tokens": _number(_first(rows, "max_input_tokens")),
        "max_output_tokens": _number(_first(rows, "max_output_tokens") or _first(rows, "max_tokens")),
        "input_cost_per_token": max(p[0] for p in prices),
        "output_cost_per_token": max(p[1] for p in prices),
        "mode": mode,
        "tpm": _total([r.tpm for r in rows]),
        "rpm": _total([r.rpm for r in rows]),
    }
    for capability in CAPABILITIES:
        info[capability] = any(r.model_info.get(capability) is True for r in rows)
    info["supported_openai_params"] = list(SUPPORTED_OPENAI_PARAMS.get(mode, ()))
    info["configurable_clientside_auth_params"] = None
    return info
