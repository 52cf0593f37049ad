"""LiteLLM's batch completions: a chat request whose `model` names several models, comma-separated,
answers a JSON list with one completion (or one OpenAI error object) per model, in the order named.
Each model's call is a request of its own: authorized, limited, routed and billed on its own."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from hydite_common.errors import HyditeError, InvalidRequestError
from hydite_common.http import JSON_HEADERS
from hydite_dataplane.request import InferenceRequest

MAX_BATCH_MODELS = 8
Run = Callable[[InferenceRequest], Awaitable[web.StreamResponse]]
"""The request path from admission on, for one model's request."""


def batch_models(request: InferenceRequest) -> list[str] | None:
    """The models of a batch request, or None when this is an ordinary request (one model, a
    stream, or a name a model group has, commas and all)."""
    model = request.body.get("model")
    if not isinstance(model, str) or "," not in model or request.operation != "chat" or request.stream:
        return None
    if request.caller.snapshot.model_groups.get(model) is not None:
        return None
    models = [m.strip() for m in model.split(",")]
    if not all(models) or len(models) > MAX_BATCH_MODELS:
        raise InvalidRequestError(
            f"a batch names 1 to {MAX_BATCH_MODELS} comma-separated models, none empty", param="model"
        )
    return models


async def run_batch(
    request: InferenceRequest, models: list[str], next_id: Callable[[], str], run: Run
) -> web.Response:
    """Every model's answer, as a list; a model that failed contributes its error object."""

    async def one(model: str) -> object:
        single = dataclasses.replace(
            request,
            request_id=next_id(),
            body={**request.body, "model": model},
            tags=list(request.tags),
        )
        try:
            response = await run(single)
        except HyditeError as exc:
            return exc.to_body()
        body = response.body if isinstance(response, web.Response) else None
        return orjson.loads(body) if isinstance(body, bytes) else None

    answers = await asyncio.gather(*(one(m) for m in models))
    return web.Response(
        body=orjson.dumps(answers), headers={**JSON_HEADERS, "x-request-id": request.request_id}
    )
