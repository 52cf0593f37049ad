"""How Azure OpenAI and Azure AI Foundry say a content filter refused a request: a 400 whose
`error.code` is `content_filter` (images: `contentFilter`), or whose `innererror.code` is
`ResponsibleAIPolicyViolation`, with the categories in `innererror.content_filter_result`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTENT_FILTER_CODES = frozenset({"content_filter", "contentfilter", "responsibleaipolicyviolation"})


def is_content_filter_refusal(error: Mapping[str, Any]) -> bool:
    """Whether an Azure `error` object is a content-filter refusal (its code, or its innererror's)."""
    inner = error.get("innererror")
    codes = [error.get("code"), inner.get("code") if isinstance(inner, dict) else None]
    return any(isinstance(code, str) and code.lower() in CONTENT_FILTER_CODES for code in codes)
