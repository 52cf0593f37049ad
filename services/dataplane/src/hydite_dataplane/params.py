"""Stage 6 (call provider), first step: the OpenAI parameters a request sends that the chosen
provider cannot honour. LiteLLM's contract: dropped when `drop_params` is set (by the request, else
by the deployment), else a 400 naming them. Fields outside OpenAI's own parameters are the
provider's (Anthropic `thinking`, Google `safety_settings`, ...) and pass untouched;
`additional_drop_params` (request or deployment) are never sent.
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from hydite_common.config_types import ADDITIONAL_DROP_PARAMS_SETTING, DROP_PARAMS_SETTING
from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import CHAT_PARAMS, COMPLETION_PARAMS, EMBEDDING_PARAMS, RESPONSES_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.request import InferenceRequest

OPENAI_PARAMS: dict[str, frozenset[str]] = {
    "chat": CHAT_PARAMS,
    "completions": COMPLETION_PARAMS,
    "embeddings": EMBEDDING_PARAMS,
    "responses": RESPONSES_PARAMS,
}
"""OpenAI's parameters per operation, where providers differ in which they honour."""

ALWAYS_HONOURED = frozenset({"model", "messages", "input", "prompt", "stream"})


def unsupported_params(request: InferenceRequest, adapter: OperationAdapter) -> list[str]:
    """OpenAI parameters in the request that adapter does not honour, in the body's order."""
    standard = OPENAI_PARAMS.get(request.operation)
    if standard is None:
        return []
    supported = adapter.supported_params
    return [
        name
        for name in request.body
        if name in standard and name not in supported and name not in ALWAYS_HONOURED
    ]


def for_provider(
    request: InferenceRequest, adapter: OperationAdapter, target: DeploymentTarget
) -> InferenceRequest:
    """The request as the provider may see it: parameters it cannot honour dropped (or a 400),
    additional_drop_params removed. The original request is left as it is for other attempts."""
    unsupported = unsupported_params(request, adapter)
    settings = request.caller.snapshot.settings
    asked, configured = request.options.additional_drop_params, target.additional_drop_params
    proxy_wide = settings.get(ADDITIONAL_DROP_PARAMS_SETTING)
    if not unsupported and not asked and not configured and proxy_wide is None:
        return request
    extra = {*asked, *configured, *(orjson.loads(proxy_wide) if proxy_wide is not None else ())}
    if unsupported:
        drop = request.options.drop_params
        if drop is None:
            proxy_drop = settings.get(DROP_PARAMS_SETTING)
            drop = target.drop_params or (proxy_drop is not None and orjson.loads(proxy_drop) is True)
        if not drop:
            names = ", ".join(repr(name) for name in unsupported)
            raise InvalidRequestError(
                f"provider {target.provider!r} does not support the parameter(s) {names} for model "
                f"{request.model!r}; remove them, or set drop_params to drop them",
                code="unsupported_params",
                param=unsupported[0],
            )
    removed = {*unsupported, *extra}
    body = {name: value for name, value in request.body.items() if name not in removed}
    return replace(request, body=body)
