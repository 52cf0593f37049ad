"""How tests drive a running stack: unique names, checked admin calls, waiting for a condition or
for every data plane to apply the committed config, and fake deployments."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats

from hydite_common.devstack import Stack
from hydite_common.settings import BaseServiceSettings
from hydite_common.spend_totals import TotalEntry, totals_bucket_name, totals_key
from hydite_common.usage_stream import usage_stream_name

FAKE_UPSTREAM_KEY = "sk-upstream-secret-0123456789"


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run sharing the stack) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ok_post(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    """POST that must succeed; its JSON."""
    response = client.post(path, json=body)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def ok_get(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET that must succeed; its JSON."""
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def synced(admin: httpx.Client, timeout: float = 1.0) -> None:
    """Wait until every connected data plane acked the committed head version (no upstream calls)."""
    head = ok_get(admin, "/config/status")["version"]

    def acked() -> bool:
        nodes = [n for n in ok_get(admin, "/config/status")["nodes"] if n["connected"]]
        return bool(nodes) and all(n["acked_version"] >= head for n in nodes)

    wait_until(acked, timeout=timeout)


def deploy_fake(
    admin: httpx.Client,
    fake_base: str,
    name: str,
    upstream: str,
    *,
    info: dict[str, Any] | None = None,
    **params: Any,
) -> str:
    """Register a deployment of model group `name` on the fake upstream's model `upstream`; its id."""
    model_id = f"{name}-{upstream}-{uuid.uuid4().hex[:4]}"
    response = admin.post(
        "/model/new",
        json={
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{upstream}",
                "api_base": fake_base,
                "api_key": FAKE_UPSTREAM_KEY,
                **params,
            },
            "model_info": {"id": model_id, **(info or {})},
        },
    )
    assert response.status_code == 200, response.text
    return model_id


def spend_row(admin: httpx.Client, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The one /spend/logs row of a request, once spend-ingest wrote it (`request_id` matches the
    gateway's id or the answer's own)."""

    def logged() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows or None

    rows: list[dict[str, Any]] = wait_until(logged, timeout=timeout, interval=0.05)
    assert len(rows) == 1, rows
    return rows[0]


USAGE_WAITING_METRICS = ("hydite_usage_batches_pending", "hydite_usage_spool_batches")


def usage_waiting(dataplane_url: str) -> int | None:
    """Usage batches a data plane holds in memory or in its spool (None if it does not answer)."""
    try:
        text = httpx.get(dataplane_url + "/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    waiting = 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in USAGE_WAITING_METRICS:
            waiting += int(float(value))
    return waiting


def consumer_settled(nats_url: str, settings: BaseServiceSettings) -> bool:
    """Whether spend-ingest has taken and acknowledged every message of the usage stream."""
    return asyncio.run(_consumer_settled(nats_url, settings))


async def _consumer_settled(nats_url: str, settings: BaseServiceSettings) -> bool:
    try:
        nc = await nats.connect(nats_url, allow_reconnect=False, connect_timeout=1)
    except Exception:
        return False
    try:
        info = await nc.jetstream().consumer_info(
            usage_stream_name(settings), settings.nats_name("SPEND_INGEST"), timeout=1
        )
    except Exception:
        return False
    finally:
        await nc.close()
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def kv_total_entry(stack: Stack, kind: str, entity: str) -> TotalEntry:
    """The spend totals KV entry of an entity, read straight from JetStream."""
    assert stack.nats is not None
    url = stack.nats.url
    bucket = totals_bucket_name(BaseServiceSettings(nats_prefix=stack.config.nats_prefix))

    async def read() -> bytes:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value(bucket)
            entry = await kv.get(totals_key(kind, entity))
            assert entry.value is not None
            return entry.value
        finally:
            await nc.close()

    return TotalEntry.decode(asyncio.run(read()))
