"""A Gemini GenerateContentResponse -> an OpenAI chat.completion, and Gemini's usageMetadata ->
token usage (pure, no I/O). The stream translator reads candidates with the same functions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from hydite_dataplane.request import TokenUsage

Json = dict[str, Any]

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
        ),
        "content_filter",
    ),
}  # fmt: skip
"""Gemini finish reasons OpenAI has a name for; any other (OTHER, MALFORMED_FUNCTION_CALL, ...) is stop."""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _audio_tokens(details: Any) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        _count(d.get("tokenCount")) for d in details if isinstance(d, dict) and d.get("modality") == "AUDIO"
    )


def token_usage(metadata: Any) -> TokenUsage:
    """TokenUsage of a usageMetadata, in OpenAI's convention: the prompt counts cached content and
    tool-use prompts (Gemini bills both as input), the completion counts thoughts."""
    if not isinstance(metadata, dict):
        return TokenUsage()
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    return TokenUsage(
        prompt_tokens=_count(metadata.get("promptTokenCount"))
        + _count(metadata.get("toolUsePromptTokenCount")),
        completion_tokens=_count(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_count(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        audio_prompt_tokens=_audio_tokens(metadata.get("promptTokensDetails")),
        audio_completion_tokens=_audio_tokens(metadata.get("candidatesTokensDetails")),
    )


def openai_usage(usage: TokenUsage) -> Json:
    """An OpenAI chat `usage` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "audio_tokens": usage.audio_prompt_tokens,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": usage.audio_completion_tokens,
        },
    }


def tool_call_id(response_id: str, choice: int, call: int) -> str:
    """The id of a function call Gemini sent without one: the same for the same answer, streamed or not."""
    digest = hashlib.sha256(f"{response_id}:{choice}:{call}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def finish_reason(reason: Any, called_tools: bool) -> str | None:
    """OpenAI's finish_reason for a Gemini one (None while the candidate goes on)."""
    if not isinstance(reason, str) or not reason:
        return None
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if mapped == "stop" and called_tools else mapped


@dataclass(slots=True)
class CandidateParts:
    """What a candidate's parts say, in OpenAI's terms."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[Json] = field(default_factory=list)


def _code_text(part: Mapping[str, Any]) -> str:
    """Code the model ran with the code execution tool, and its output, as Markdown."""
    code = part.get("executableCode")
    if isinstance(code, dict):
        language = str(code.get("language") or "").lower().replace("language_unspecified", "")
        return f"\n```{language}\n{code.get('code', '')}\n```\n"
    result = part.get("codeExecutionResult")
    if isinstance(result, dict) and result.get("output"):
        return f"\n```\n{result['output']}\n```\n"
    return ""


def candidate_parts(candidate: Mapping[str, Any], response_id: str, first_call: int = 0) -> CandidateParts:
    """Text, thought text and function calls of a candidate (calls numbered from first_call)."""
    found = CandidateParts()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    choice = _count(candidate.get("index"))
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            if part.get("thought") is True:
                found.reasoning += text
            else:
                found.text += text
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            number = first_call + len(found.tool_calls)
            call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
            tool_call: Json = {
                "id": call_id or tool_call_id(response_id, choice, number),
                "type": "function",
                "function": {
                    "name": str(call.get("name") or ""),
                    "arguments": orjson.dumps(call.get("args") or {}).decode(),
                },
            }
            if isinstance(part.get("thoughtSignature"), str):
                tool_call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
            found.tool_calls.append(tool_call)
        else:
            found.text += _code_text(part)
    return found


def _token_logprob(token: Any) -> Json:
    text = str(token.get("token", "")) if isinstance(token, dict) else ""
    value = token.get("logProbability") if isinstance(token, dict) else None
    logprob = float(value) if isinstance(value, int | float) else 0.0
    return {"token": text, "logprob": logprob, "bytes": list(text.encode())}


def logprobs(candidate: Mapping[str, Any]) -> Json | None:
    """A candidate's logprobsResult as OpenAI's choice logprobs."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    tokens = []
    for position, token in enumerate(chosen if isinstance(chosen, list) else []):
        top = (
            tops[position].get("candidates")
            if position < len(tops) and isinstance(tops[position], dict)
            else []
        )
        tokens.append({**_token_logprob(token), "top_logprobs": [_token_logprob(t) for t in top or []]})
    return {"content": tokens, "refusal": None}


def prompt_blocked(body: Mapping[str, Any]) -> bool:
    """Whether Gemini refused the prompt itself (no candidates, promptFeedback.blockReason)."""
    feedback = body.get("promptFeedback")
    return not body.get("candidates") and isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _message(parts: CandidateParts) -> Json:
    message: Json = {"role": "assistant", "content": parts.text or None, "refusal": None}
    if parts.reasoning:
        message["reasoning_content"] = parts.reasoning
    if parts.tool_calls:
        message["tool_calls"] = parts.tool_calls
    return message


def chat_completion(body: Mapping[str, Any], *, model: str, created: int, fallback_id: str) -> Json:
    """The chat.completion for a GenerateContentResponse (a blocked prompt is a content_filter
    choice without content, not an error)."""
    response_id = body.get("responseId")
    completion_id = response_id if isinstance(response_id, str) and response_id else fallback_id
    choices: list[Json] = []
    candidates = body.get("candidates")
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
        if not isinstance(candidate, dict):
            continue
        parts = candidate_parts(candidate, completion_id)
        choices.append(
            {
                "index": _count(candidate.get("index")) or position,
                "message": _message(parts),
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(parts.tool_calls))
                or "stop",
                "logprobs": logprobs(candidate),
            }
        )
    if not choices:
        reason = "content_filter" if prompt_blocked(body) else "stop"
        choices.append(
            {"index": 0, "message": _message(CandidateParts()), "finish_reason": reason, "logprobs": None}
        )
    version = body.get("modelVersion")
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": version if isinstance(version, str) and version else model,
        "choices": choices,
        "usage": openai_usage(token_usage(body.get("usageMetadata"))),
    }
