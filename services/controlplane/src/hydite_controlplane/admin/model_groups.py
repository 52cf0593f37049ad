"""Model groups as LiteLLM's /model_group/info describes them (pure): one entry per public model
name, from its deployments' providers, prices, limits and model_info.

The OpenAI parameters per mode are the ones the data plane's adapters take for the group's
providers (`hydite_common.openai_params`), less the request's own subject (model, messages, input).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from hydite_common.openai_params import honoured_params
from hydite_common.pricing import ResolvedPrice, list_price, resolve_price
from hydite_controlplane.config.builder import UnbuildableRow, price_settings_of
from hydite_controlplane.models.deployments import DeploymentRow

MODE_OPERATIONS = {
    "chat": "chat",
    "completion": "completions",
    "embedding": "embeddings",
    "image_generation": "images",
    "audio_speech": "speech",
    "audio_transcription": "transcriptions",
    "moderation": "moderations",
    "rerank": "rerank",
}
"""LiteLLM mode -> the operation a call in that mode is."""
REQUEST_SUBJECTS = frozenset({"model", "messages", "prompt", "input", "file", "query", "documents"})
"""What a call is about rather than how: not listed among its parameters, as LiteLLM lists them."""


def supported_openai_params(mode: str, providers: Sequence[str]) -> list[str]:
    """The OpenAI parameters a call in mode may carry to any of the providers (the data plane's
    own table)."""
    operation = MODE_OPERATIONS.get(mode)
    if operation is None:
        return []
    params: set[str] = set()
    for provider in providers:
        params |= honoured_params(provider, operation)
    return sorted(params - REQUEST_SUBJECTS)


RERANK_PROVIDERS = frozenset({"cohere", "jina"})
CAPABILITIES = (
    "supports_parallel_function_calling", "supports_vision", "supports_function_calling",
    "supports_web_search", "supports_reasoning", "supports_response_schema", "supports_prompt_caching",
    "supports_audio_input", "supports_audio_output", "supports_pdf_input", "supports_tool_choice",
)  # fmt: skip
"""Capabilities a deployment's model_info may claim (false unless one of the group's does)."""


def resolved_price(row: DeploymentRow) -> ResolvedPrice:
    """The price the data plane bills a call to this deployment at, resolved as it resolves it
    (a deployment whose stored prices the builder refuses is quarantined: its list price shows)."""
    try:
        params, info = price_settings_of(row)
    except UnbuildableRow:
        return list_price(row.provider, row.upstream_model)
    return resolve_price(row.provider, row.upstream_model, params, info)


def billed_prices(row: DeploymentRow) -> tuple[float, float]:
    """What a call to this deployment is billed per token now (input, output), before any tier."""
    base = resolved_price(row).price.rates_at(time.time()).base
    return base.input, base.output


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
    info["supported_openai_params"] = supported_openai_params(mode, info["providers"])
    info["configurable_clientside_auth_params"] = None
    return info
