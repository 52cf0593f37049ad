"""POST /utils/token_counter: count a prompt's tokens the way the model's provider does, without
calling the model."""

from __future__ import annotations

from aiohttp import web

from hydite_common.allowlists import permits
from hydite_common.errors import InvalidRequestError
from hydite_common.http import json_response, read_json_object
from hydite_dataplane.authz import allowlists
from hydite_dataplane.encodings import count_chat_tokens, count_tokens, encoding_for
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.request import Caller


async def token_counter(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """{"model", "messages" | "prompt"} -> {"total_tokens", "request_model", "model_used", ...}."""
    body = await read_json_object(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("you must provide a model parameter", param="model")
    group = caller.snapshot.deployments_for(model)
    # A gateway model counts with its deployment's provider model; another name is taken as it is.
    upstream = group[0].upstream_model if group and permits(allowlists(caller), model) else model
    encoding, encoding_name = encoding_for(upstream)
    messages, prompt = body.get("messages"), body.get("prompt")
    if isinstance(messages, list):
        total = count_chat_tokens(encoding, messages)
    elif isinstance(prompt, str):
        total = count_tokens(encoding, prompt)
    else:
        raise InvalidRequestError("give 'messages' (an array) or 'prompt' (a string)", param="messages")
    return json_response(
        {
            "total_tokens": total,
            "request_model": model,
            "model_used": upstream,
            "tokenizer_type": f"openai_tokenizer:{encoding_name}",
        }
    )
