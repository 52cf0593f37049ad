"""What requests cost: prices resolved once per deployment from its own settings, genai-prices
or LiteLLM's table (`resolve`), compiled into plain arithmetic per request (`compiled`)."""

from hydite_common.pricing.compiled import UNKNOWN, UNPRICED, CompiledPrice, MeteredUsage, Rates
from hydite_common.pricing.resolve import (
    DEPLOYMENT,
    MODEL_INFO,
    OWN_SOURCES,
    ResolvedPrice,
    is_price_setting,
    list_price,
    model_info_fields,
    price_settings,
    resolve_price,
)

__all__ = [
    "DEPLOYMENT",
    "MODEL_INFO",
    "OWN_SOURCES",
    "UNKNOWN",
    "UNPRICED",
    "CompiledPrice",
    "MeteredUsage",
    "Rates",
    "ResolvedPrice",
    "is_price_setting",
    "list_price",
    "model_info_fields",
    "price_settings",
    "resolve_price",
]
