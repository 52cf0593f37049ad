"""The data plane's end of ConfigService.Stream: apply snapshots and deltas, ACK or NACK each.

If the control plane is unreachable the data plane keeps serving its last
snapshot and reconnects with backoff (static stability).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import random
import socket
from collections.abc import Callable

import grpc

from hydite.config.v1 import config_pb2 as pb
from hydite.config.v1 import config_pb2_grpc as pb_grpc
from hydite_common.config_types import CONFIG_SCHEMA_VERSION
from hydite_common.credentials import CredentialCipher
from hydite_common.grpc_keepalive import GrpcKeepaliveSettings, client_channel_options
from hydite_common.settings import CONFIG_TOKEN_METADATA
from hydite_dataplane.config.decode import LEGACY_SCHEMA_VERSION, apply_delta, snapshot_from_resources
from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.config.snapshot import Snapshot

log = logging.getLogger(__name__)

GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
BACKOFF_INITIAL_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


def release_freed_memory() -> None:
    """After a full snapshot: collect the old one and hand freed pages back to the OS (glibc)."""
    gc.collect()
    # Not glibc: the allocator keeps the pages for reuse, which is fine.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ConfigStreamClient:
    """Keeps a ConfigService stream open and the snapshot holder current."""

    def __init__(
        self,
        target: str,
        node_id: str,
        holder: SnapshotHolder,
        cipher: CredentialCipher,
        token: str = "",
        *,
        keepalive: GrpcKeepaliveSettings,
    ) -> None:
        self._metadata = ((CONFIG_TOKEN_METADATA, token),) if token else ()
        self._target = target
        self._node_id = node_id
        self._holder = holder
        self._cipher = cipher
        self._channel_options = [
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
            *client_channel_options(keepalive),
        ]
        self.connected = False
        self.streams_opened = 0
        """Streams that delivered a first message; more than one means the stream was re-established."""
        self.refused_versions = 0
        """Config versions NACKed (not applied: the snapshot served stayed the one before)."""
        self.last_refusal: str | None = None
        """Why the last version received was refused; None once a version applies."""

    def status(self) -> dict[str, object]:
        """The config stream's state, as readiness details show it."""
        return {
            "version": self._holder.current.version,
            "schema_version": CONFIG_SCHEMA_VERSION,
            "connected": self.connected,
            "refused": self.last_refusal,
        }

    async def run(self) -> None:
        """Connect, follow the stream, and reconnect with jittered backoff forever."""
        backoff = BACKOFF_INITIAL_SECONDS
        while True:
            try:
                async with grpc.aio.insecure_channel(self._target, options=self._channel_options) as channel:
                    await self._follow(pb_grpc.ConfigServiceStub(channel))  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("config stream to %s ended: %s", self._target, exc.code().name)
            except Exception:
                log.exception("config stream failed")
            # A stream that delivered anything was healthy: start the backoff over (unless what it
            # delivered was refused: a newer schema comes again on every reconnect).
            healthy = self.connected and self.last_refusal is None
            backoff = BACKOFF_INITIAL_SECONDS if healthy else min(backoff * 2, BACKOFF_MAX_SECONDS)
            self.connected = False
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))

    async def _follow(self, stub: pb_grpc.ConfigServiceStub) -> None:
        call = stub.Stream(metadata=self._metadata)
        hello = pb.Hello(
            node_id=self._node_id, version=self._holder.current.version, hostname=socket.gethostname()
        )
        await call.write(pb.StreamRequest(hello=hello))
        pending: list[pb.Resource] = []
        pending_nonce = ""
        pending_schema = LEGACY_SCHEMA_VERSION
        async for response in call:
            if not self.connected:
                self.connected = True
                self.streams_opened += 1
            kind = response.WhichOneof("message")
            if kind == "snapshot_begin":
                begin = response.snapshot_begin
                pending, pending_nonce, pending_schema = [], begin.nonce, begin.schema_version
            elif kind == "snapshot_chunk":
                if response.snapshot_chunk.nonce == pending_nonce:
                    pending.extend(response.snapshot_chunk.resources)
            elif kind == "snapshot_end":
                end = response.snapshot_end
                if end.nonce == pending_nonce:
                    build = functools.partial(
                        snapshot_from_resources,
                        end.version,
                        pending,
                        self._cipher,
                        schema_version=pending_schema,
                    )
                    await call.write(self._apply(end.version, end.nonce, build))
                    del build
                    pending = []
                    release_freed_memory()
            elif kind == "deltas":
                batch = response.deltas
                base = self._holder.current
                if batch.from_version != base.version:
                    log.warning(
                        "config delta starts at %d but %d is applied; resyncing",
                        batch.from_version,
                        base.version,
                    )
                    call.cancel()
                    return
                build = functools.partial(apply_delta, base, batch, self._cipher)
                await call.write(self._apply(batch.version, batch.nonce, build))

    def _apply(self, version: int, nonce: str, build: Callable[[], Snapshot]) -> pb.StreamRequest:
        try:
            snapshot = build()
        except Exception as exc:
            log.error("refusing config version %d: %s", version, exc)
            self.refused_versions += 1
            self.last_refusal = f"version {version}: {exc}"[:500]
            return pb.StreamRequest(nack=pb.Nack(version=version, nonce=nonce, reason=str(exc)[:500]))
        self.last_refusal = None
        self._holder.swap(snapshot)
        return pb.StreamRequest(ack=pb.Ack(version=version, nonce=nonce))
