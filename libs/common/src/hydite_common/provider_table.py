"""The OpenAI-compatible providers as data: one row per provider (LiteLLM's prefix), saying where it
lives, how it authenticates and how its API differs from OpenAI's. The data plane builds one adapter
family from these rows, the control plane accepts their names, and README's provider table is
rendered from them (`python -m hydite_common.provider_table --markdown`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

StreamUsage = Literal["include_usage", "always", "never"]
"""How a provider's streams report usage: when asked with `stream_options.include_usage` (the
gateway asks), in the last chunk whether asked or not (the gateway never sends `stream_options`),
or not at all (never sent either; the call is billed by estimate)."""

EMPTY: Mapping[str, Any] = {}

CHAT_PATHS: Mapping[str, str] = {"chat": "/chat/completions"}
EMBEDDING_PATHS: Mapping[str, str] = {"embeddings": "/embeddings"}


@dataclass(frozen=True, slots=True)
class Quirks:
    """How one operation's request body differs from OpenAI's, applied in this order: values
    refused or not among those accepted, renames, value maps, clamps, content flattening, fields
    derived from a parameter."""

    unsupported: frozenset[str] = frozenset()
    """OpenAI parameters the provider does not honour (drop_params drops them, else a 400)."""
    dropped: frozenset[str] = frozenset()
    """Parameters the gateway takes for itself (`user`: the end user) and never sends to a
    provider that refuses unknown fields (unsupported ones are never sent either)."""
    refused_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Values of a parameter the provider rejects: a clear 400 from the gateway instead of theirs."""
    accepted_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Parameter -> the only values the provider takes: another is a 400 naming them."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """OpenAI parameter -> the provider's name for it."""
    value_maps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Parameter -> {OpenAI value: the provider's value} (named after the rename)."""
    clamps: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Numeric parameter -> the range the provider accepts; a value outside is moved to the bound."""
    flatten_text_content: bool = False
    """A message content that is a list of text parts only is sent as one string."""
    derived_fields: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Parameter -> {its value: provider fields to send instead}; fields the client set win."""


NO_QUIRKS = Quirks()


def merged_quirks(base: Quirks, over: Quirks) -> Quirks:
    """base with over's quirks added; where both name a parameter, over's rule wins."""
    return Quirks(
        unsupported=base.unsupported | over.unsupported,
        dropped=base.dropped | over.dropped,
        refused_values={**base.refused_values, **over.refused_values},
        accepted_values={**base.accepted_values, **over.accepted_values},
        renames={**base.renames, **over.renames},
        value_maps={**base.value_maps, **over.value_maps},
        clamps={**base.clamps, **over.clamps},
        flatten_text_content=base.flatten_text_content or over.flatten_text_content,
        derived_fields={**base.derived_fields, **over.derived_fields},
    )


OperationQuirks = Mapping[str, Quirks]
"""Operation -> how its body differs from OpenAI's."""


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """One OpenAI-compatible provider, as checked against its API reference (`reference`)."""

    name: str
    """LiteLLM's prefix (`deepseek/deepseek-chat`)."""
    title: str
    api_base: str
    """Where a deployment that names no api_base goes; empty: the deployment must name one."""
    reference: str
    """The API documentation the row was checked against."""
    paths: Mapping[str, str] = field(default_factory=lambda: CHAT_PATHS)
    """Operation -> its path relative to the API base; the operations the provider has."""
    aliases: tuple[str, ...] = ()
    regional_bases: Mapping[str, str] = field(default_factory=dict)
    """Other endpoints of the same API (a deployment names one as its api_base)."""
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    """Prefix of the key in auth_header; empty: the key alone."""
    quirks: OperationQuirks = field(default_factory=dict)
    """Operation -> how its body differs from OpenAI's."""
    model_quirks: tuple[tuple[str, OperationQuirks], ...] = ()
    """(upstream model glob, quirks) for quirks of some models only: the first pattern the model
    matches adds its quirks to the row's (`for_model`)."""
    stream_usage: StreamUsage = "include_usage"
    reasoning_field: str = ""
    """The message and delta field the provider's reasoning text arrives in (relayed as it is)."""
    error_format: str = "openai"
    rerank_results: str = "results"
    """The field of a rerank answer that lists the ranked documents."""
    notes: str = ""

    def quirks_of(self, operation: str) -> Quirks:
        """The operation's quirks (none when the provider speaks OpenAI's shape there)."""
        return self.quirks.get(operation, NO_QUIRKS)

    def model_pattern(self, model: str) -> str:
        """The first model_quirks pattern upstream model matches ('' when none does)."""
        return next((pattern for pattern, _ in self.model_quirks if fnmatchcase(model, pattern)), "")

    def for_pattern(self, pattern: str) -> ProviderRow:
        """The row as it applies to the models of a model_quirks pattern: that entry's quirks merged
        over the row's ('' or an unknown pattern: the row itself)."""
        extra = dict(self.model_quirks).get(pattern)
        if extra is None:
            return self
        operations = {**self.quirks, **extra}
        quirks = {op: merged_quirks(self.quirks_of(op), extra.get(op, NO_QUIRKS)) for op in operations}
        return replace(self, quirks=quirks, model_quirks=())

    def for_model(self, model: str) -> ProviderRow:
        """The row as it applies to upstream model."""
        return self.for_pattern(self.model_pattern(model))

    @property
    def names(self) -> tuple[str, ...]:
        """The prefix and its aliases."""
        return (self.name, *self.aliases)


_OPENAI_ONLY_CHAT = frozenset(
    {
        "logit_bias", "modalities", "audio", "service_tier", "store", "web_search_options", "functions",
        "function_call",
    }
)  # fmt: skip
"""OpenAI-platform chat parameters (stored completions, audio, predicted outputs, the legacy
functions API) that an API reference lists nowhere."""

DASHSCOPE_THINKING: Mapping[str, Mapping[str, Any]] = {
    "none": {"enable_thinking": False},
    "minimal": {"enable_thinking": False},
    "low": {"enable_thinking": True},
    "medium": {"enable_thinking": True},
    "high": {"enable_thinking": True},
}
"""Qwen3's hybrid thinking is switched by `enable_thinking`, not by reasoning_effort."""

VOYAGE_ENCODING_FORMATS: Mapping[str, Mapping[str, Any]] = {
    "float": {},
    "base64": {"encoding_format": "base64"},
}
"""Voyage's encoding_format is null (floats) or 'base64'; OpenAI's explicit 'float' is its null."""

XAI_REASONING_REFUSES = frozenset({"presence_penalty", "frequency_penalty", "stop"})
"""What xAI's reasoning models reject (their reasoning guide)."""
XAI_MODEL_QUIRKS: tuple[tuple[str, OperationQuirks], ...] = (
    (
        "grok-3-mini*",
        {
            "chat": Quirks(
                unsupported=XAI_REASONING_REFUSES, accepted_values={"reasoning_effort": ("low", "high")}
            )
        },
    ),
    ("grok-3*", {"chat": Quirks(unsupported=frozenset({"reasoning_effort"}))}),
    ("grok-4*non-reasoning*", {"chat": Quirks(unsupported=frozenset({"reasoning_effort"}))}),
    (
        "grok-4.3*",
        {
            "chat": Quirks(
                unsupported=XAI_REASONING_REFUSES,
                accepted_values={"reasoning_effort": ("none", "low", "medium", "high")},
            )
        },
    ),
    ("grok-4*", {"chat": Quirks(unsupported=XAI_REASONING_REFUSES | {"reasoning_effort"})}),
)
"""Only grok-3-mini and grok-4.3 take reasoning_effort, each its own values; the reasoning models
(grok-3-mini, the grok-4 family but its non-reasoning variants) refuse penalties and stop. The first
matching pattern applies, so the narrower ones come first."""

ZHIPU_QUIRKS = Quirks(flatten_text_content=True)
ZHIPU_NOTES = "text-only content parts flattened to a string; reasoning_content relayed"

ROWS: tuple[ProviderRow, ...] = (
    ProviderRow(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com/v1",
        "https://api-docs.deepseek.com/guides/reasoning_model",
        reasoning_field="reasoning_content",
        notes="reasoning_content relayed in messages and stream deltas",
    ),
    ProviderRow(
        "dashscope",
        "Alibaba Cloud Model Studio (Qwen)",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "https://www.alibabacloud.com/help/en/model-studio/deep-thinking",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        regional_bases={"international": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"},
        quirks={"chat": Quirks(derived_fields={"reasoning_effort": DASHSCOPE_THINKING})},
        reasoning_field="reasoning_content",
        notes="reasoning_effort sent as enable_thinking",
    ),
    ProviderRow(
        "zai",
        "Z.ai (GLM, international)",
        "https://api.z.ai/api/paas/v4",
        "https://docs.z.ai/api-reference/llm/chat-completion",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        quirks={"chat": ZHIPU_QUIRKS},
        reasoning_field="reasoning_content",
        notes=ZHIPU_NOTES,
    ),
    ProviderRow(
        "zhipuai",
        "Zhipu AI BigModel (GLM, China)",
        "https://open.bigmodel.cn/api/paas/v4",
        "https://docs.bigmodel.cn/api-reference",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        quirks={"chat": ZHIPU_QUIRKS},
        reasoning_field="reasoning_content",
        notes=ZHIPU_NOTES,
    ),
    ProviderRow(
        "moonshot",
        "Moonshot AI (Kimi)",
        "https://api.moonshot.ai/v1",
        "https://platform.kimi.ai/docs/guide/migrating-from-openai-to-kimi",
        regional_bases={"china": "https://api.moonshot.cn/v1"},
        quirks={"chat": Quirks(clamps={"temperature": (0.0, 1.0)})},
        reasoning_field="reasoning_content",
        notes="temperature clamped to [0, 1]",
    ),
    ProviderRow(
        "minimax",
        "MiniMax",
        "https://api.minimax.io/v1",
        "https://platform.minimax.io/docs/api-reference/text-chat",
        regional_bases={"china": "https://api.minimaxi.com/v1"},
        quirks={"chat": Quirks(clamps={"temperature": (0.0, 1.0), "top_p": (0.0, 1.0)})},
        notes="temperature and top_p clamped to at most 1 (MiniMax takes (0, 1])",
    ),
    ProviderRow(
        "qianfan",
        "Baidu Qianfan (ERNIE)",
        "https://qianfan.baidubce.com/v2",
        "https://cloud.baidu.com/doc/WENXINWORKSHOP/s/2m3fihw8s",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
    ),
    ProviderRow(
        "volcengine",
        "Volcengine Ark (Doubao)",
        "https://ark.cn-beijing.volces.com/api/v3",
        "https://www.volcengine.com/docs/82379/1298454",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        reasoning_field="reasoning_content",
    ),
    ProviderRow(
        "hunyuan",
        "Tencent Hunyuan",
        "https://api.hunyuan.cloud.tencent.com/v1",
        "https://cloud.tencent.com/document/product/1729/111007",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
    ),
    ProviderRow(
        "siliconflow",
        "SiliconFlow",
        "https://api.siliconflow.cn/v1",
        "https://docs.siliconflow.cn/docs/api/chat-completions-post",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        regional_bases={"international": "https://api.siliconflow.com/v1"},
        reasoning_field="reasoning_content",
    ),
    ProviderRow(
        "xai",
        "xAI (Grok)",
        "https://api.x.ai/v1",
        "https://docs.x.ai/developers/model-capabilities/text/reasoning",
        model_quirks=XAI_MODEL_QUIRKS,
        notes="reasoning models (grok-3-mini, grok-4 family) refuse presence_penalty, frequency_penalty "
        "and stop; reasoning_effort is grok-3-mini's ('low', 'high') and grok-4.3's ('none', 'low', "
        "'medium', 'high'), no other grok's; grok-4 non-reasoning variants take the penalties and stop",
    ),
    ProviderRow(
        "mistral",
        "Mistral AI",
        "https://api.mistral.ai/v1",
        "https://docs.mistral.ai/api/",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        quirks={
            "chat": Quirks(
                unsupported=_OPENAI_ONLY_CHAT | {"logprobs", "top_logprobs", "reasoning_effort"},
                dropped=frozenset({"user", "metadata"}),
                renames={"seed": "random_seed", "max_completion_tokens": "max_tokens"},
                value_maps={"tool_choice": {"required": "any"}},
            ),
            "embeddings": Quirks(dropped=frozenset({"user"}), renames={"dimensions": "output_dimension"}),
        },
        stream_usage="always",
        error_format="mistral",
        notes="seed sent as random_seed, max_completion_tokens as max_tokens, tool_choice 'required' as "
        "'any'; unknown fields are a 422 there, so no stream_options and no user",
    ),
    ProviderRow(
        "groq",
        "Groq",
        "https://api.groq.com/openai/v1",
        "https://console.groq.com/docs/openai",
        paths={
            **CHAT_PATHS,
            "transcriptions": "/audio/transcriptions",
            "translations": "/audio/translations",
        },
        quirks={"chat": Quirks(unsupported=frozenset({"logprobs", "logit_bias", "top_logprobs"}))},
        notes="logprobs, logit_bias and top_logprobs unsupported",
    ),
    ProviderRow(
        "together_ai",
        "Together AI",
        "https://api.together.xyz/v1",
        "https://github.com/togethercomputer/together-py/blob/main/src/together/types/chat/completion_create_params.py",
        paths={
            **CHAT_PATHS,
            "completions": "/completions",
            **EMBEDDING_PATHS,
            "images": "/images/generations",
        },
        quirks={
            "chat": Quirks(
                unsupported=frozenset(
                    {
                        "top_logprobs",
                        "parallel_tool_calls",
                        "prediction",
                        "modalities",
                        "audio",
                        "service_tier",
                        "store",
                        "web_search_options",
                    }
                ),
                dropped=frozenset({"user", "metadata"}),
                renames={"max_completion_tokens": "max_tokens"},
            ),
            "completions": Quirks(unsupported=frozenset({"best_of", "suffix"}), dropped=frozenset({"user"})),
            "embeddings": Quirks(unsupported=frozenset({"dimensions"}), dropped=frozenset({"user"})),
        },
        stream_usage="always",
        notes="max_completion_tokens sent as max_tokens; no stream_options (usage rides on the stream's "
        "chunks); user not sent",
    ),
    ProviderRow(
        "fireworks_ai",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1",
        "https://github.com/fw-ai-external/python-sdk/blob/main/src/fireworks/types/chat/completion_create_params.py",
        paths={**CHAT_PATHS, "completions": "/completions", **EMBEDDING_PATHS},
        quirks={
            "chat": Quirks(
                unsupported=frozenset({"modalities", "audio", "store", "web_search_options"}),
                clamps={"top_logprobs": (0, 5)},
            ),
            "completions": Quirks(unsupported=frozenset({"best_of", "suffix"})),
        },
        stream_usage="always",
        notes="top_logprobs clamped to at most 5; no stream_options (usage rides on the stream's chunks)",
    ),
    ProviderRow(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        "https://openrouter.ai/docs/client-sdks/python/components/chatstreamoptions",
        paths={**CHAT_PATHS, "completions": "/completions"},
        stream_usage="always",
        notes="streams always carry usage (stream_options.include_usage is deprecated there)",
    ),
    ProviderRow(
        "perplexity",
        "Perplexity",
        "https://api.perplexity.ai",
        "https://github.com/perplexityai/perplexity-py/blob/main/src/perplexity/types/chat/completion_create_params.py",
        quirks={
            "chat": Quirks(
                unsupported=frozenset(
                    {
                        "logit_bias",
                        "seed",
                        "prediction",
                        "modalities",
                        "audio",
                        "service_tier",
                        "store",
                        "functions",
                        "function_call",
                    }
                ),
                dropped=frozenset({"user", "metadata"}),
                renames={"max_completion_tokens": "max_tokens"},
            )
        },
        stream_usage="always",
        notes="max_completion_tokens sent as max_tokens; no stream_options (usage rides on the stream's "
        "chunks); user not sent",
    ),
    ProviderRow(
        "deepinfra",
        "DeepInfra",
        "https://api.deepinfra.com/v1/openai",
        "https://deepinfra.com/docs/openai_api",
        paths={**CHAT_PATHS, "completions": "/completions", **EMBEDDING_PATHS},
        stream_usage="always",
        notes="the stream's last chunk carries usage unasked",
    ),
    ProviderRow(
        "cerebras",
        "Cerebras",
        "https://api.cerebras.ai/v1",
        "https://github.com/Cerebras/cerebras-cloud-sdk-python/blob/main/src/cerebras/cloud/sdk/types/chat/completion_create_params.py",
        paths={**CHAT_PATHS, "completions": "/completions"},
        quirks={
            "chat": Quirks(
                unsupported=frozenset(
                    {"modalities", "audio", "store", "web_search_options", "functions", "function_call"}
                ),
                dropped=frozenset({"metadata"}),
                clamps={"temperature": (0.0, 1.5)},
            ),
            "completions": Quirks(clamps={"temperature": (0.0, 1.5)}),
        },
        notes="temperature clamped to [0, 1.5]",
    ),
    ProviderRow(
        "cohere_chat",
        "Cohere (OpenAI compatibility API)",
        "https://api.cohere.ai/compatibility/v1",
        "https://docs.cohere.com/docs/compatibility-api",
        paths={**CHAT_PATHS, **EMBEDDING_PATHS},
        quirks={
            "chat": Quirks(
                unsupported=frozenset(
                    {
                        "store",
                        "logit_bias",
                        "top_logprobs",
                        "n",
                        "modalities",
                        "prediction",
                        "audio",
                        "service_tier",
                        "parallel_tool_calls",
                    }
                ),
                dropped=frozenset({"metadata"}),
                refused_values={"reasoning_effort": ("minimal", "low", "medium")},
                renames={"max_completion_tokens": "max_tokens"},
            ),
            "embeddings": Quirks(unsupported=frozenset({"dimensions"}), dropped=frozenset({"user"})),
        },
        notes="reasoning_effort 'none' or 'high' only; max_completion_tokens sent as max_tokens; rerank is "
        "the `cohere` provider's",
    ),
    ProviderRow(
        "voyage",
        "Voyage AI",
        "https://api.voyageai.com/v1",
        "https://docs.voyageai.com/reference/embeddings-api",
        paths={**EMBEDDING_PATHS, "rerank": "/rerank"},
        quirks={
            "embeddings": Quirks(
                dropped=frozenset({"user"}),
                renames={"dimensions": "output_dimension"},
                derived_fields={"encoding_format": VOYAGE_ENCODING_FORMATS},
            ),
            "rerank": Quirks(unsupported=frozenset({"max_chunks_per_doc"}), renames={"top_n": "top_k"}),
        },
        rerank_results="data",
        notes="dimensions sent as output_dimension; encoding_format 'float' left out (Voyage's default, "
        "which it does not name); rerank's top_n as top_k, answered in Cohere's shape",
    ),
    ProviderRow(
        "jina_ai",
        "Jina AI",
        "https://api.jina.ai/v1",
        "https://jina.ai/embeddings/",
        paths={**EMBEDDING_PATHS, "rerank": "/rerank"},
        notes="rerank answered in Cohere's shape",
    ),
    ProviderRow(
        "hosted_vllm",
        "vLLM (self-hosted)",
        "",
        "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
        paths={**CHAT_PATHS, "completions": "/completions", **EMBEDDING_PATHS},
        reasoning_field="reasoning_content",
        notes="api_base required",
    ),
    ProviderRow(
        "ollama",
        "Ollama (OpenAI-compatible /v1)",
        "http://localhost:11434",
        "https://github.com/ollama/ollama/blob/main/docs/openai.md",
        paths={
            "chat": "/v1/chat/completions",
            "completions": "/v1/completions",
            "embeddings": "/v1/embeddings",
        },
        aliases=("ollama_chat",),
        notes="api_base is the server's root, as LiteLLM configs give it; the key is optional",
    ),
    ProviderRow(
        "lm_studio",
        "LM Studio",
        "http://localhost:1234/v1",
        "https://lmstudio.ai/docs/developer/openai-compat/chat-completions",
        paths={**CHAT_PATHS, "completions": "/completions", **EMBEDDING_PATHS},
        quirks={
            "chat": Quirks(
                unsupported=frozenset(
                    {
                        "n",
                        "logprobs",
                        "top_logprobs",
                        "parallel_tool_calls",
                        "reasoning_effort",
                        "prediction",
                        "modalities",
                        "audio",
                        "service_tier",
                        "store",
                        "web_search_options",
                        "functions",
                        "function_call",
                    }
                ),
                dropped=frozenset({"user", "metadata"}),
                renames={"max_completion_tokens": "max_tokens"},
            )
        },
        notes="max_completion_tokens sent as max_tokens; the key is optional",
    ),
    ProviderRow(
        "openai_compatible",
        "Any OpenAI-compatible API",
        "",
        "https://platform.openai.com/docs/api-reference/chat",
        paths={**CHAT_PATHS, "completions": "/completions", **EMBEDDING_PATHS},
        aliases=("custom_openai",),
        notes="api_base required",
    ),
)
"""Every OpenAI-compatible provider. A quirk is listed only where the reference documents it."""

ROWS_BY_NAME: dict[str, ProviderRow] = {name: row for row in ROWS for name in row.names}
"""Prefix or alias -> its row."""


def default_api_base(provider: str) -> str:
    """Where a deployment of provider goes when it names no api_base ('' when it must)."""
    row = ROWS_BY_NAME.get(provider)
    return row.api_base if row is not None else ""


# ---------------------------------------------------------------- README table

README_START = (
    "<!-- provider-table:start (generated: python -m hydite_common.provider_table --write README.md) -->"
)
README_END = "<!-- provider-table:end -->"
STREAM_USAGE_LABELS: dict[str, str] = {
    "include_usage": "when asked (`include_usage` sent)",
    "always": "always (no `stream_options` sent)",
    "never": "never (no `stream_options` sent; billed by estimate)",
}


STREAMED_OPERATIONS = frozenset({"chat", "completions"})


def _stream_label(row: ProviderRow) -> str:
    if not STREAMED_OPERATIONS & row.paths.keys():
        return "no streams"
    return STREAM_USAGE_LABELS[row.stream_usage]


def _auth_label(row: ProviderRow) -> str:
    scheme = f"{row.auth_scheme} " if row.auth_scheme else ""
    return f"`{row.auth_header}: {scheme}<key>`"


def _notes_label(row: ProviderRow) -> str:
    parts = [row.notes] if row.notes else []
    if row.aliases:
        parts.append("alias " + ", ".join(f"`{a}`" for a in row.aliases))
    parts.extend(f"{region}: `{base}`" for region, base in row.regional_bases.items())
    return "; ".join(parts)


def markdown_table(rows: tuple[ProviderRow, ...] = ROWS) -> str:
    """The README's provider table: one line per row."""
    lines = [
        "| prefix | provider | default API base | operations | auth | streaming usage | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = f"`{row.api_base}`" if row.api_base else "(required)"
        lines.append(
            f"| `{row.name}/` | [{row.title}]({row.reference}) | {base} | {', '.join(row.paths)} | "
            f"{_auth_label(row)} | {_stream_label(row)} | {_notes_label(row)} |"
        )
    return "\n".join(lines) + "\n"


def with_table(readme: str, table: str) -> str:
    """README text with the section between the markers replaced by table."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError("README.md has no provider-table markers")
    return f"{head}{README_START}\n{table}{README_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """--markdown prints the table; --write README.md rewrites its section of the file."""
    parser = argparse.ArgumentParser(prog="python -m hydite_common.provider_table")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the provider table")
    group.add_argument("--write", metavar="README", type=Path, help="rewrite the table in README")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    path: Path = args.write
    path.write_text(with_table(path.read_text(encoding="utf-8"), markdown_table()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
