"""ConfigService.Stream: hello, then snapshot or deltas to the head, then deltas as they commit."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import grpc

from hydite.config.v1 import config_pb2 as pb
from hydite.config.v1 import config_pb2_grpc as pb_grpc
from hydite_common.settings import CONFIG_TOKEN_METADATA
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.node_status import NodeStatusStore

log = logging.getLogger(__name__)


class ConfigServicer(pb_grpc.ConfigServiceServicer):
    """Streams config to data planes and records their ACK/NACKs."""

    def __init__(self, cache: SnapshotCache, status: NodeStatusStore, token: str = "") -> None:
        self._cache = cache
        self._status = status
        self._token = token.encode()
        self._streams: dict[str, list[datetime]] = {}
        self._releasing = False
        self._background: set[asyncio.Task[None]] = set()

    async def Stream(  # noqa: N802 - name fixed by the generated service
        self, request_iterator: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamResponse]:
        if self._token and not self._authentic(context):
            # Nothing is sent and nothing recorded: no snapshot, no node status, no NACK.
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid config token is required")
            return
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("message") != "hello" or not first.hello.node_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "first message must be Hello with a node_id"
            )
            return
        hello = first.hello
        node_id = hello.node_id
        wake = self._cache.subscribe()
        closed = asyncio.Event()
        sent_nonces: dict[str, int] = {}
        # Version 0 means the data plane holds no snapshot yet: it gets one even if the head is 0.
        responses, head = self._cache.responses_since(hello.version or None)
        connected_at = await self._status.connected(
            node_id, hello.hostname, hello.version, _is_snapshot(responses)
        )
        self._streams.setdefault(node_id, []).append(connected_at)
        reader = asyncio.create_task(
            self._read_replies(request_iterator, node_id, connected_at, sent_nonces, closed, wake)
        )
        try:
            while True:
                for response in responses:
                    sent_nonces[_nonce_of(response)] = head
                    yield response
                sent_version = head
                await wake.wait()
                if closed.is_set():
                    break
                wake.clear()
                responses, head = self._cache.responses_since(sent_version)
                if _is_snapshot(responses):
                    await self._status.loading(node_id, connected_at)
        finally:
            self._cache.unsubscribe(wake)
            reader.cancel()
            open_streams = self._streams.get(node_id, [])
            open_streams.remove(connected_at)
            if not open_streams:
                self._streams.pop(node_id, None)
            if not self._releasing:
                # The stream's own task is being cancelled: record the disconnect in a task of its own.
                recorder = asyncio.create_task(self._status.disconnected(node_id, connected_at))
                self._background.add(recorder)
                recorder.add_done_callback(self._background.discard)

    @property
    def connected_nodes(self) -> dict[str, datetime]:
        """The nodes with a stream open to this replica, each with its newest stream's connected_at
        (a node restarting may briefly have two)."""
        return {node_id: max(since) for node_id, since in self._streams.items()}

    def release(self) -> None:
        """This replica is stopping: the streams it ends are not departures (their nodes reconnect to
        another replica), so they leave the snapshot only if they do not, once stale."""
        self._releasing = True

    def _authentic(self, context: grpc.aio.ServicerContext) -> bool:
        shown = dict(context.invocation_metadata() or ()).get(CONFIG_TOKEN_METADATA, "")
        presented = shown.encode() if isinstance(shown, str) else bytes(shown)
        return hmac.compare_digest(presented, self._token)

    async def _read_replies(
        self,
        request_iterator: AsyncIterator[pb.StreamRequest],
        node_id: str,
        connected_at: datetime,
        sent_nonces: dict[str, int],
        closed: asyncio.Event,
        wake: asyncio.Event,
    ) -> None:
        try:
            async for request in request_iterator:
                kind = request.WhichOneof("message")
                reply = request.ack if kind == "ack" else request.nack if kind == "nack" else None
                # A reply to a nonce this stream never sent is stale: ignore it.
                if reply is None or sent_nonces.pop(reply.nonce, None) is None:
                    continue
                if kind == "ack":
                    await self._status.acked(node_id, connected_at, request.ack.version)
                else:
                    log.warning(
                        "node %s refused config version %d: %s",
                        node_id,
                        request.nack.version,
                        request.nack.reason,
                    )
                    await self._status.nacked(
                        node_id, connected_at, request.nack.version, request.nack.reason
                    )
        except grpc.aio.AioRpcError:
            pass
        finally:
            closed.set()
            wake.set()


def _nonce_of(response: pb.StreamResponse) -> str:
    kind = response.WhichOneof("message")
    return str(getattr(response, kind).nonce)


def _is_snapshot(responses: list[pb.StreamResponse]) -> bool:
    return bool(responses) and responses[0].WhichOneof("message") == "snapshot_begin"
