"""OpenAI chat completions -> the Anthropic Messages API: the request body (its messages by
`anthropic_conversation`), its URL and headers.

Pure translation, no I/O. What Anthropic has no place for is left out (Anthropic refuses unknown
fields); fields of Anthropic's own (`thinking`, `top_k`, ...) pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic_conversation import (
    ContentTranslation,
    conversation,
    refused,
    with_cache_control,
)

DEFAULT_API_BASE = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

JSON_ANSWER_TOOL = "json_response"
"""The forced tool whose input is the answer, for JSON output on models without structured outputs."""

PASSED_THROUGH = frozenset(
    {
        "thinking", "top_k", "container", "mcp_servers", "context_management", "cache_control",
        "inference_geo", "output_config", "speed", "diagnostics",
    }
)  # fmt: skip
"""Anthropic's own request fields, sent as the client wrote them."""

REASONING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
"""Thinking budget (tokens) per OpenAI reasoning_effort."""
MIN_THINKING_BUDGET = 1024

_SERVICE_TIERS = {"auto": "auto", "standard_only": "standard_only", "default": "standard_only"}


@dataclass(frozen=True, slots=True)
class ModelGeneration:
    """What a Claude model name says: family (opus, sonnet, haiku) and version."""

    family: str
    major: int
    minor: int


_NEW_STYLE = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:[-.](\d{1,2})(?!\d))?")
_OLD_STYLE = re.compile(r"claude-(\d+)(?:[-.](\d))?-(opus|sonnet|haiku)")


def model_generation(model: str) -> ModelGeneration | None:
    """The family and version in a model name (`claude-sonnet-4-5-20250929`, `claude-3-5-haiku`)."""
    if found := _NEW_STYLE.search(model):
        return ModelGeneration(found[1], int(found[2]), int(found[3] or 0))
    if found := _OLD_STYLE.search(model):
        return ModelGeneration(found[3], int(found[1]), int(found[2] or 0))
    return None


def _max_output_tokens(generation: ModelGeneration | None) -> int:
    """The most a model of this generation may write (Anthropic's model table)."""
    if generation is None:
        return 4096
    version = (generation.major, generation.minor)
    if version < (3, 5):
        return 4096
    if version < (3, 7):
        return 8192
    if generation.family == "opus":
        if version < (4, 5):
            return 32000
        return 64000 if version < (4, 6) else 128000
    return 64000


def default_max_tokens(model: str, model_info: Mapping[str, Any]) -> int:
    """max_tokens when the client sets none: the deployment's model_info, else the model's limit."""
    for name in ("max_output_tokens", "max_tokens"):
        value = model_info.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return _max_output_tokens(model_generation(model))


def has_structured_outputs(model: str) -> bool:
    """Whether the model takes `output_config.format` (JSON schema output): Claude 4.5 and later."""
    generation = model_generation(model)
    return generation is not None and (generation.major, generation.minor) >= (4, 5)


def messages_url(target: DeploymentTarget, path: str = "/messages") -> str:
    """{api_base}/v1{path}; an api_base that already ends with /v1 keeps a single one."""
    base = (target.api_base or DEFAULT_API_BASE).rstrip("/")
    return f"{base}{path}" if base.endswith("/v1") else f"{base}/v1{path}"


def anthropic_headers(
    target: DeploymentTarget, provider_headers: Mapping[str, str], betas: Sequence[str] = ()
) -> dict[str, str]:
    """x-api-key, anthropic-version (the client's, else the default) and anthropic-beta (the
    client's betas, then the ones the translation needs, each once)."""
    headers = {
        "content-type": "application/json",
        "anthropic-version": provider_headers.get("anthropic-version") or DEFAULT_ANTHROPIC_VERSION,
    }
    if target.api_key:
        headers["x-api-key"] = target.api_key
    wanted = [b.strip() for b in provider_headers.get("anthropic-beta", "").split(",")] + list(betas)
    merged = list(dict.fromkeys(b for b in wanted if b))
    if merged:
        headers["anthropic-beta"] = ",".join(merged)
    return headers


@dataclass(frozen=True, slots=True)
class AnthropicRequest:
    """A Messages API body and the beta features it needs."""

    body: dict[str, Any]
    betas: tuple[str, ...] = ()


def _tool(tool: Any, strict_allowed: bool) -> dict[str, Any]:
    """An OpenAI function tool as an Anthropic tool; Anthropic's own tools pass as they are."""
    if not isinstance(tool, dict):
        raise refused("every tool must be an object", "tools")
    if tool.get("type") != "function":
        if tool.get("type") is None and not isinstance(tool.get("input_schema"), dict):
            raise refused("a tool needs type 'function' and a function object", "tools")
        return dict(tool)
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise refused("a function tool needs a function with a name", "tools")
    schema = dict(function.get("parameters") or {"properties": {}})
    schema.setdefault("type", "object")
    translated: dict[str, Any] = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        translated["description"] = function["description"]
    if function.get("strict") is True and strict_allowed:
        translated["strict"] = True
    return with_cache_control(translated, tool if "cache_control" in tool else function)


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    named = {"auto": "auto", "required": "any", "none": "none", "any": "any"}
    if isinstance(choice, str) and choice in named:
        return {"type": named[choice]}
    if isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, dict) and function.get("name"):
            return {"type": "tool", "name": function["name"]}
        if choice.get("type") in ("auto", "any", "tool", "none"):
            return dict(choice)
    raise refused("tool_choice must be auto, required, none or a named function", "tool_choice")


def _int_param(body: Mapping[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise refused(f"'{name}' must be an integer of at least {minimum}", name)
    return value


def _thinking(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The thinking config reasoning_effort asks for (a client's own `thinking` wins)."""
    effort = body.get("reasoning_effort")
    if effort is None or "thinking" in body:
        return None
    if effort == "none":
        return {"type": "disabled"}
    if effort not in REASONING_BUDGETS:
        raise refused(
            f"reasoning_effort must be one of none, {', '.join(REASONING_BUDGETS)}", "reasoning_effort"
        )
    return {"type": "enabled", "budget_tokens": REASONING_BUDGETS[effort]}


def _max_tokens(body: Mapping[str, Any], model: str, model_info: Mapping[str, Any], thinking: Any) -> int:
    """The client's max_completion_tokens or max_tokens, else the model's default; a thinking budget
    the translation set stays below it (thinking counts toward max_tokens)."""
    asked = _int_param(body, "max_completion_tokens", 1)
    if asked is None:
        asked = _int_param(body, "max_tokens", 1)
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if asked is None:
        limit = default_max_tokens(model, model_info)
        if isinstance(budget, int) and budget >= limit:
            thinking["budget_tokens"] = max(MIN_THINKING_BUDGET, limit // 2)
        return limit
    if isinstance(budget, int) and asked <= budget:
        # The client's allowance is for the answer; the thinking budget comes on top of it.
        return asked + budget
    return asked


def _metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    metadata = body.get("metadata")
    user: Any = None
    if isinstance(metadata, dict):
        user = metadata.get("user_id") or metadata.get("user")
    user = user or body.get("user")
    return {"user_id": user} if isinstance(user, str) and user else None


def _stop_sequences(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise refused("'stop' must be a string or an array of strings", "stop")
    return sequences or None


def _json_output(body: Mapping[str, Any], model: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(output_config.format, answer tool) for response_format: Anthropic's structured outputs where
    the model has them, else a forced tool whose input is the answer."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if fmt is None or kind == "text":
        return None, None
    if kind == "json_object":
        schema: Any = {"type": "object"}
    elif kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise refused("response_format json_schema needs json_schema.schema", "response_format")
        if has_structured_outputs(model):
            return {"type": "json_schema", "schema": schema}, None
        if schema.get("type", "object") != "object":
            raise refused(
                "this model answers JSON through a tool: the schema must be an object", "response_format"
            )
    else:
        raise refused("response_format type must be text, json_object or json_schema", "response_format")
    tool = {
        "name": JSON_ANSWER_TOOL,
        "description": "Give the answer as this tool's input, following its schema exactly.",
        "input_schema": {"type": "object", **schema},
    }
    return None, tool


def json_answer_tool(body: Mapping[str, Any]) -> str | None:
    """The tool whose input is the answer's content, when the client asked for JSON output."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    return JSON_ANSWER_TOOL if kind in ("json_object", "json_schema") else None


def to_anthropic(
    body: Mapping[str, Any], model: str, *, stream: bool, model_info: Mapping[str, Any]
) -> AnthropicRequest:
    """A chat completions body (deployment defaults merged in) as a Messages API body for model."""
    n = _int_param(body, "n", 1)
    if n is not None and n > 1:
        raise refused("Anthropic models answer one choice per request: 'n' must be 1", "n")
    translation = ContentTranslation()
    system, messages = conversation(body.get("messages"), translation)
    thinking = _thinking(body)
    upstream: dict[str, Any] = {"model": model, "messages": messages}
    upstream["max_tokens"] = _max_tokens(body, model, model_info, thinking)
    if system is not None:
        upstream["system"] = system
    upstream.update({name: body[name] for name in PASSED_THROUGH if body.get(name) is not None})
    if thinking is not None:
        upstream["thinking"] = thinking
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            upstream[name] = body[name]
    if (stop := _stop_sequences(body.get("stop"))) is not None:
        upstream["stop_sequences"] = stop
    if (metadata := _metadata(body)) is not None:
        upstream["metadata"] = metadata
    if (tier := _SERVICE_TIERS.get(str(body.get("service_tier")))) is not None:
        upstream["service_tier"] = tier
    output_format, answer_tool = _json_output(body, model)
    if output_format is not None:
        upstream["output_config"] = {**(upstream.get("output_config") or {}), "format": output_format}
    client_tools = body.get("tools") or []
    if not isinstance(client_tools, list):
        raise refused("'tools' must be an array", "tools")
    tools = [_tool(tool, has_structured_outputs(model)) for tool in client_tools]
    choice = _tool_choice(body.get("tool_choice"))
    if answer_tool is not None:
        tools.append(answer_tool)
        thinking_on = (
            isinstance(upstream.get("thinking"), dict) and upstream["thinking"].get("type") != "disabled"
        )
        if thinking_on:
            # Thinking allows no forced tool: the model is asked, not made, to answer through it.
            choice = {"type": "auto"}
        elif choice is None:
            choice = {"type": "any"} if client_tools else {"type": "tool", "name": JSON_ANSWER_TOOL}
    if body.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice.get("type") != "none":
            choice = {**choice, "disable_parallel_tool_use": True}
    if tools:
        upstream["tools"] = tools
        if choice is not None:
            upstream["tool_choice"] = choice
    if stream:
        upstream["stream"] = True
    return AnthropicRequest(upstream, tuple(dict.fromkeys(translation.betas)))
