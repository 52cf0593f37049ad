"""Rolling upgrades of the config protocol, with two builds: the checked-in config.proto and a "next"
copy with extra fields and a new resource type, compiled at test time into its own descriptor pool.

Each build decodes what the other encodes (unknown fields are skipped, known ones intact); a real
data plane follows a control plane of either build (an older one that sets no schema version, a
newer one of the same schema major with fields it does not know), and refuses a delta of a newer
schema major while it keeps serving the version it has.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from grpc_tools import protoc  # type: ignore[import-untyped]

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import CONFIG_SCHEMA_VERSION, VIRTUAL_KEY
from hydite_common.credentials import CredentialCipher
from hydite_common.devstack import Stack, free_port
from hydite_common.keys import hash_key
from hydite_dataplane.config.decode import snapshot_from_resources
from tests.harness import wait_until

PROTO = Path(__file__).resolve().parents[1] / "proto" / "hydite" / "config" / "v1" / "config.proto"
NEXT_ADDITIONS = {
    "message VirtualKey {": "  string next_region = 200;\n  repeated uint64 next_quotas = 201;",
    "message SnapshotBegin {": "  string next_hint = 100;",
    "message DeltaBatch {": "  string next_hint = 100;",
}
NEXT_ONLY_TYPE = "message Guardrail {\n  string name = 1;\n  bytes rules_json = 2;\n}\n"
PREFIX = "type.googleapis.com/hydite.config.v1."
MODEL = "rolling"


class NextBuild:
    """The message classes of the "next" config.proto, from their own descriptor pool."""

    def __init__(self, out: Path) -> None:
        text = PROTO.read_text()
        for opening, fields in NEXT_ADDITIONS.items():
            assert opening in text, opening
            text = text.replace(opening, f"{opening}\n{fields}", 1)
        source = out / "hydite" / "config" / "v1" / "config.proto"
        source.parent.mkdir(parents=True)
        source.write_text(text + NEXT_ONLY_TYPE)
        descriptors = out / "next.pb"
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{out}",
            f"-I{include}",
            "--include_imports",
            f"--descriptor_set_out={descriptors}",
        ]
        assert protoc.main([*args, str(source)]) == 0
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes())
        self._pool = descriptor_pool.DescriptorPool()
        for file in files.file:
            self._pool.Add(file)

    def __getattr__(self, name: str) -> Any:
        return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(f"hydite.config.v1.{name}"))

    def resource(self, name: str, message: Message) -> Any:
        """A Resource of this build whose body holds message."""
        resource = self.Resource(name=name)
        resource.body.type_url = PREFIX + message.DESCRIPTOR.name
        resource.body.value = message.SerializeToString()
        return resource


@pytest.fixture(scope="module")
def next_build(tmp_path_factory: pytest.TempPathFactory) -> NextBuild:
    """The "next" build of the config protocol."""
    return NextBuild(tmp_path_factory.mktemp("next-proto"))


def test_each_build_decodes_what_the_other_encodes(next_build: NextBuild) -> None:
    """A next-build key read by this build keeps its known fields; a key of this build read by the
    next one has the new fields at their defaults."""
    newer = next_build.VirtualKey(
        key_hash="h1", key_alias="a", models=["m"], next_region="eu", next_quotas=[3]
    )
    read = pb.VirtualKey.FromString(newer.SerializeToString())
    assert (read.key_hash, read.key_alias, list(read.models)) == ("h1", "a", ["m"])
    current = pb.VirtualKey(key_hash="h2", blocked=True, tags=["t"])
    back = next_build.VirtualKey.FromString(current.SerializeToString())
    assert (back.key_hash, back.blocked, list(back.tags), back.next_region) == ("h2", True, ["t"], "")


def test_a_next_build_snapshot_decodes_and_skips_the_new_type(next_build: NextBuild) -> None:
    """A snapshot of next-build resources, one of a type this build lacks, decodes into a snapshot
    holding the known resources."""
    key = next_build.VirtualKey(key_hash="h1", models=["m"], next_region="eu")
    resources = [
        pb.Resource.FromString(next_build.resource("h1", key).SerializeToString()),
        pb.Resource.FromString(next_build.resource("g", next_build.Guardrail(name="g")).SerializeToString()),
    ]
    snapshot = snapshot_from_resources(7, resources, CredentialCipher("salt"), schema_version=1)
    assert snapshot.version == 7 and set(snapshot.collections[VIRTUAL_KEY].keys()) == {"h1"}


class FakeControlPlane:
    """A ConfigService of the next build that sends one scripted group of responses per reply of
    the data plane (ACK or NACK), then holds the stream open."""

    def __init__(self, build: NextBuild, script: list[list[Any]]) -> None:
        self._build = build
        self._script = script
        self.replies: list[Any] = []
        self._done = threading.Event()
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream,
            request_deserializer=build.StreamRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("hydite.config.v1.ConfigService", {"Stream": handler})]
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def _stream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        next(requests)  # Hello
        for group in self._script:
            yield from group
            self.replies.append(next(requests))
        self._done.wait(60)

    def start(self) -> None:
        """Serve."""
        self._server.start()

    def stop(self) -> None:
        """End the stream and the server."""
        self._done.set()
        self._server.stop(0)


def _key(build: NextBuild, key: str) -> Any:
    return build.resource(
        hash_key(key), build.VirtualKey(key_hash=hash_key(key), models=[MODEL], next_region="eu")
    )


def _script(build: NextBuild, cipher: CredentialCipher, keys: list[str]) -> list[list[Any]]:
    """Version 1 as an older control plane sends it (no schema version), version 2 from a newer one
    of the same major with fields and a type this data plane lacks, version 3 of a newer major."""
    deployment = build.Deployment(
        deployment_id="rolling-mock", model_name=MODEL, provider="mock", upstream_model="demo",
        api_key_encrypted=cipher.encrypt(""),
    )  # fmt: skip
    response = build.StreamResponse
    chunk = build.SnapshotChunk(version=1, nonce="n1", index=0)
    chunk.resources.extend([build.resource("rolling-mock", deployment), _key(build, keys[0])])
    snapshot = [
        response(snapshot_begin=build.SnapshotBegin(version=1, nonce="n1", chunk_count=1)),
        response(snapshot_chunk=chunk),
        response(snapshot_end=build.SnapshotEnd(version=1, nonce="n1")),
    ]

    def delta(version: int, schema: int, key: str) -> list[Any]:
        batch = build.DeltaBatch(
            from_version=version - 1,
            version=version,
            nonce=f"n{version}",
            schema_version=schema,
            next_hint="x",
        )
        change = batch.deltas.add(type_url=PREFIX + "VirtualKey")
        change.upserts.append(_key(build, key))
        batch.deltas.add(type_url=PREFIX + "Guardrail").upserts.append(
            build.resource("g", build.Guardrail(name="g"))
        )
        return [response(deltas=batch)]

    return [snapshot, delta(2, CONFIG_SCHEMA_VERSION, keys[1]), delta(3, CONFIG_SCHEMA_VERSION + 1, keys[2])]


def _chat(port: int, key: str) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return httpx.post(url, json=body, headers=headers, timeout=10).status_code


def test_a_data_plane_follows_either_build_and_refuses_a_newer_major(
    stack: Stack, next_build: NextBuild
) -> None:
    """Against a next-build control plane: the legacy snapshot and the same-major delta apply (ACK)
    and their keys work; the newer-major delta is NACKed, its key unknown, and the data plane stays
    ready on version 2, with the refusal in its readiness details and metrics."""
    keys = [f"sk-rolling-{hashlib.sha256(str(i).encode()).hexdigest()[:16]}-{free_port()}" for i in range(3)]
    fake = FakeControlPlane(next_build, _script(next_build, CredentialCipher(stack.config.salt_key), keys))
    fake.start()
    port = free_port()
    service = stack.spawn(
        f"dataplane-rolling-{port}",
        "hydite_dataplane",
        port,
        HYDITE_PORT=str(port),
        HYDITE_NODE_ID=f"dataplane-rolling-{port}",
        HYDITE_CONTROLPLANE_GRPC=f"127.0.0.1:{fake.port}",
    )
    try:
        wait_until(lambda: len(fake.replies) == 3, timeout=10)
        first, second, third = fake.replies
        assert (first.WhichOneof("message"), first.ack.version) == ("ack", 1)
        assert (second.WhichOneof("message"), second.ack.version) == ("ack", 2)
        assert (third.WhichOneof("message"), third.nack.version) == ("nack", 3)
        assert "newer" in third.nack.reason
        assert [_chat(port, key) for key in keys] == [200, 200, 401]
        ready = httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=5)
        assert ready.status_code == 200
        config = ready.json()["config"]
        assert config["version"] == 2 and "newer" in config["refused"]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "hydite_config_refused_total 1" in metrics
    finally:
        stack.stop_service(service)
        fake.stop()
