"""The parameters of each OpenAI operation, and which of them each provider's API honours: one
table for the data plane's adapters (what they send, what drop_params drops) and the control plane's
/model_group/info and /utils/supported_openai_params answers."""

from __future__ import annotations

from hydite_common import provider_table

CHAT_PARAMS = frozenset(
    {
        "messages", "model", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
        "max_tokens", "max_completion_tokens", "n", "presence_penalty", "response_format",
        "seed", "stop", "stream", "stream_options", "temperature", "top_p", "tools",
        "tool_choice", "parallel_tool_calls", "user", "reasoning_effort", "metadata",
        "modalities", "audio", "prediction", "service_tier", "store", "web_search_options",
        "functions", "function_call",
    }
)  # fmt: skip
COMPLETION_PARAMS = frozenset(
    {
        "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens",
        "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature",
        "top_p", "user",
    }
)  # fmt: skip
EMBEDDING_PARAMS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
MODERATION_PARAMS = frozenset({"model", "input"})
IMAGE_PARAMS = frozenset(
    {
        "model", "prompt", "n", "size", "quality", "style", "response_format", "user", "background",
        "moderation", "output_format", "output_compression",
    }
)  # fmt: skip
SPEECH_PARAMS = frozenset(
    {"model", "input", "voice", "instructions", "response_format", "speed", "stream_format"}
)
RESPONSES_PARAMS = frozenset(
    {
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
        "tool_choice", "parallel_tool_calls", "stream", "text", "metadata", "user", "store",
        "previous_response_id", "reasoning",
    }
)  # fmt: skip
TRANSCRIPTION_PARAMS = frozenset(
    {"model", "file", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]",
     "include[]", "chunking_strategy", "stream"}
)  # fmt: skip
TRANSLATION_PARAMS = frozenset({"model", "file", "prompt", "response_format", "temperature"})
IMAGE_EDIT_PARAMS = frozenset(
    {"model", "image", "image[]", "mask", "prompt", "n", "size", "response_format", "user", "quality",
     "background", "output_format"}
)  # fmt: skip
IMAGE_VARIATION_PARAMS = frozenset({"model", "image", "n", "size", "response_format", "user"})
RERANK_PARAMS = frozenset({"model", "query", "documents", "top_n", "return_documents", "max_chunks_per_doc"})
"""Rerank (Cohere's shape, which Hydite's /rerank takes)."""

ANTHROPIC_CHAT_PARAMS = frozenset(
    {
        "messages", "model", "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
        "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user", "metadata",
        "reasoning_effort", "response_format", "service_tier",
    }
)  # fmt: skip
"""The chat parameters Anthropic's Messages API honours (no logprobs, n, penalties, logit_bias or seed)."""

GEMINI_CHAT_PARAMS = frozenset(
    {
        "messages", "model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
        "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "reasoning_effort",
        "web_search_options", "user", "metadata",
    }
)  # fmt: skip
"""The chat parameters the Gemini API honours (`user` and `metadata` are the gateway's own: the
end user and tags; Gemini never sees them)."""
GEMINI_EMBEDDING_PARAMS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
BEDROCK_CHAT_PARAMS = frozenset(
    {
        "messages", "model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "tools", "tool_choice", "reasoning_effort", "user", "metadata",
    }
)  # fmt: skip
"""The chat parameters Bedrock's Converse API honours (`reasoning_effort` on Claude models)."""


PROVIDER_PARAMS: dict[str, dict[str, frozenset[str]]] = {
    "anthropic": {"chat": ANTHROPIC_CHAT_PARAMS},
    "gemini": {"chat": GEMINI_CHAT_PARAMS, "embeddings": GEMINI_EMBEDDING_PARAMS},
    "bedrock": {"chat": BEDROCK_CHAT_PARAMS},
    "vertex_ai": {"chat": GEMINI_CHAT_PARAMS, "embeddings": GEMINI_EMBEDDING_PARAMS},
}
"""Where a provider honours less than OpenAI's own set of an operation."""

OPENAI_OPERATION_PARAMS: dict[str, frozenset[str]] = {
    "chat": CHAT_PARAMS,
    "completions": COMPLETION_PARAMS,
    "embeddings": EMBEDDING_PARAMS,
    "moderations": MODERATION_PARAMS,
    "images": IMAGE_PARAMS,
    "speech": SPEECH_PARAMS,
    "responses": RESPONSES_PARAMS,
    "transcriptions": TRANSCRIPTION_PARAMS,
    "translations": TRANSLATION_PARAMS,
    "image_edits": IMAGE_EDIT_PARAMS,
    "image_variations": IMAGE_VARIATION_PARAMS,
    "rerank": RERANK_PARAMS,
}
"""OpenAI's parameters per operation."""


def row_params(row: provider_table.ProviderRow, operation: str) -> frozenset[str]:
    """The parameters an OpenAI-compatible row (or its form for one model) honours for operation."""
    return OPENAI_OPERATION_PARAMS.get(operation, frozenset()) - row.quirks_of(operation).unsupported


PROVIDER_PARAMS.update(
    {
        name: {operation: row_params(row, operation) for operation in row.paths}
        for row in provider_table.ROWS
        for name in row.names
    }
)
"""The OpenAI-compatible providers honour OpenAI's set less what their row says they do not."""


def honoured_params(provider: str, operation: str) -> frozenset[str]:
    """The parameters a call of operation to provider may carry."""
    own = PROVIDER_PARAMS.get(provider)
    if own is not None and operation in own:
        return own[operation]
    return OPENAI_OPERATION_PARAMS.get(operation, frozenset())
