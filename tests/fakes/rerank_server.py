"""Fake rerank upstreams: Cohere (/v2/rerank) and Jina (/v1/rerank), in their own wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


def score(query: str, document: str) -> float:
    """Share of the query's words found in the document: deterministic relevance."""
    words = set(query.lower().split())
    return round(len(words & set(document.lower().split())) / max(1, len(words)), 4)


@dataclass
class FakeRerank:
    """Both providers on one app; `requests` keeps (path, body) of each call."""

    api_key: str
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _ranked(self, body: dict[str, Any]) -> list[tuple[int, float, str]]:
        documents = [d if isinstance(d, str) else d["text"] for d in body["documents"]]
        ranked = sorted(
            ((i, score(body["query"], d), d) for i, d in enumerate(documents)), key=lambda r: (-r[1], r[0])
        )
        return ranked[: body.get("top_n") or len(ranked)]

    async def cohere(self, request: web.Request) -> web.Response:
        """Cohere v2 rerank."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"message": "invalid api token"}, status=401)
        body = await request.json(loads=orjson.loads)
        self.requests.append((request.path, body))
        results = [
            {
                "index": i,
                "relevance_score": s,
                **({"document": {"text": d}} if body.get("return_documents") else {}),
            }
            for i, s, d in self._ranked(body)
        ]
        return web.json_response(
            {"id": "cohere-rerank-1", "results": results, "meta": {"billed_units": {"search_units": 1}}}
        )

    async def jina(self, request: web.Request) -> web.Response:
        """Jina v1 rerank (documents come back as {"text": ...})."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"detail": "Unauthorized"}, status=401)
        body = await request.json(loads=orjson.loads)
        self.requests.append((request.path, body))
        tokens = len(body["query"].split()) + sum(len(str(d).split()) for d in body["documents"])
        results = [
            {
                "index": i,
                "relevance_score": s,
                "document": {"text": d} if body.get("return_documents", True) else None,
            }
            for i, s, d in self._ranked(body)
        ]
        return web.json_response(
            {"model": body["model"], "usage": {"total_tokens": tokens}, "results": results}
        )

    def app(self) -> web.Application:
        """The aiohttp app."""
        app = web.Application()
        app.router.add_post("/v2/rerank", self.cohere)
        app.router.add_post("/v1/rerank", self.jina)
        return app
