"""Unit tests of hydite_controlplane.config.cache.SnapshotCache: full snapshots, chunking,
merged deltas, history limits and subscriber wake-ups (pure state, no gRPC or SQL)."""

from __future__ import annotations

from collections import Counter

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_controlplane.config.cache import Changes, SnapshotCache


def setting(name: str, payload: bytes = b"1") -> pb.Resource:
    """A named Setting resource packed in an Any body."""
    packed = pb.Resource(name=name)
    packed.body.Pack(pb.Setting(name=name, value_json=payload))
    return packed


def team(team_id: str) -> pb.Resource:
    """A named Team resource packed in an Any body."""
    packed = pb.Resource(name=team_id)
    packed.body.Pack(pb.Team(team_id=team_id))
    return packed


def snapshot_parts(
    responses: list[pb.StreamResponse],
) -> tuple[pb.SnapshotBegin, list[pb.SnapshotChunk], pb.SnapshotEnd]:
    """Split a full-snapshot response list into begin, chunks and end, checking the framing."""
    assert len(responses) >= 2
    assert responses[0].WhichOneof("message") == "snapshot_begin"
    assert responses[-1].WhichOneof("message") == "snapshot_end"
    middle = responses[1:-1]
    assert all(r.WhichOneof("message") == "snapshot_chunk" for r in middle)
    begin, end = responses[0].snapshot_begin, responses[-1].snapshot_end
    chunks = [r.snapshot_chunk for r in middle]
    assert begin.chunk_count == len(chunks)
    assert (end.version, end.nonce) == (begin.version, begin.nonce)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert (chunk.version, chunk.nonce) == (begin.version, begin.nonce)
    return begin, chunks, end


def is_full_snapshot(responses: list[pb.StreamResponse]) -> bool:
    """Whether responses are a begin/chunks/end full snapshot."""
    return bool(responses) and responses[0].WhichOneof("message") == "snapshot_begin"


def only_delta(responses: list[pb.StreamResponse]) -> pb.DeltaBatch:
    """The single DeltaBatch of a delta answer."""
    assert len(responses) == 1
    assert responses[0].WhichOneof("message") == "deltas"
    return responses[0].deltas


def delta_by_type(batch: pb.DeltaBatch) -> dict[str, pb.Delta]:
    """The batch's deltas keyed by type URL (each type at most once)."""
    by_type = {d.type_url: d for d in batch.deltas}
    assert len(by_type) == len(batch.deltas)
    return by_type


def test_empty_cache_full_snapshot_at_version_zero() -> None:
    """A fresh cache answers None with begin and end at version 0 and no chunks."""
    cache = SnapshotCache()
    responses, head = cache.responses_since(None)
    assert head == 0
    begin, chunks, _ = snapshot_parts(responses)
    assert begin.version == 0
    assert begin.nonce
    assert chunks == []


def test_full_snapshot_after_reset_holds_everything() -> None:
    """After reset, a full snapshot carries every resource of every type at the reset version."""
    cache = SnapshotCache()
    cache.reset(7, {types.SETTING: [setting("a"), setting("b")], types.TEAM: [team("t1")]})
    assert cache.loaded
    assert cache.resource_count() == 3
    responses, head = cache.responses_since(None)
    assert head == 7
    begin, chunks, _ = snapshot_parts(responses)
    assert begin.version == 7
    assert len(chunks) == 1
    assert sorted(r.name for r in chunks[0].resources) == ["a", "b", "t1"]


def test_full_snapshot_nonces_differ() -> None:
    """Each full snapshot gets a fresh nonce."""
    cache = SnapshotCache()
    first, _ = cache.responses_since(None)
    second, _ = cache.responses_since(None)
    assert first[0].snapshot_begin.nonce != second[0].snapshot_begin.nonce


def test_chunking_by_chunk_bytes() -> None:
    """Many resources are split into several chunks; each resource appears exactly once."""
    cache = SnapshotCache(chunk_bytes=1000)
    names = [f"setting-{i:03d}" for i in range(60)]
    cache.reset(3, {types.SETTING: [setting(n, b"x" * 100) for n in names]})
    responses, _ = cache.responses_since(None)
    _, chunks, _ = snapshot_parts(responses)
    assert len(chunks) > 3
    seen = Counter(r.name for c in chunks for r in c.resources)
    assert set(seen) == set(names)
    assert set(seen.values()) == {1}
    for chunk in chunks[:-1]:
        size = sum(r.ByteSize() + 8 for r in chunk.resources)
        assert size >= 1000
        assert size - (chunk.resources[-1].ByteSize() + 8) < 1000


def test_single_chunk_when_under_limit() -> None:
    """Resources that fit in chunk_bytes travel in one chunk."""
    cache = SnapshotCache(chunk_bytes=1 << 20)
    cache.reset(1, {types.SETTING: [setting(f"s{i}") for i in range(50)]})
    _, chunks, _ = snapshot_parts(cache.responses_since(None)[0])
    assert len(chunks) == 1
    assert len(chunks[0].resources) == 50


def test_up_to_date_gets_nothing() -> None:
    """A data plane already at the head gets no responses."""
    cache = SnapshotCache()
    cache.reset(4, {types.SETTING: [setting("a")]})
    assert cache.responses_since(4) == ([], 4)


def test_upsert_then_remove_merges_to_removal() -> None:
    """A resource upserted then removed after the client's version arrives only as a removal."""
    cache = SnapshotCache()
    cache.reset(1, {types.SETTING: [setting("keep")]})
    cache.apply(2, {(types.SETTING, "tmp"): setting("tmp")})
    cache.apply(3, {(types.SETTING, "tmp"): None})
    batch = only_delta(cache.responses_since(1)[0])
    assert (batch.from_version, batch.version) == (1, 3)
    assert batch.nonce
    deltas = delta_by_type(batch)
    assert set(deltas) == {types.SETTING}
    assert list(deltas[types.SETTING].removed_names) == ["tmp"]
    assert list(deltas[types.SETTING].upserts) == []


def test_remove_then_upsert_merges_to_upsert() -> None:
    """A resource removed then upserted again arrives as the later upsert."""
    cache = SnapshotCache()
    cache.reset(1, {types.SETTING: [setting("a", b"1")]})
    cache.apply(2, {(types.SETTING, "a"): None})
    cache.apply(3, {(types.SETTING, "a"): setting("a", b"2")})
    deltas = delta_by_type(only_delta(cache.responses_since(1)[0]))
    assert list(deltas[types.SETTING].removed_names) == []
    assert list(deltas[types.SETTING].upserts) == [setting("a", b"2")]


def test_two_versions_merge() -> None:
    """Changes of two versions are merged into one batch, grouped by type."""
    cache = SnapshotCache()
    cache.reset(10, {types.SETTING: [setting("old")], types.TEAM: [team("t-old")]})
    cache.apply(11, {(types.SETTING, "a"): setting("a"), (types.TEAM, "t-old"): None})
    cache.apply(12, {(types.SETTING, "b"): setting("b"), (types.SETTING, "a"): setting("a", b"2")})
    responses, head = cache.responses_since(10)
    assert head == 12
    batch = only_delta(responses)
    assert (batch.from_version, batch.version) == (10, 12)
    deltas = delta_by_type(batch)
    assert set(deltas) == {types.SETTING, types.TEAM}
    assert sorted(r.name for r in deltas[types.SETTING].upserts) == ["a", "b"]
    upserted_a = next(r for r in deltas[types.SETTING].upserts if r.name == "a")
    assert upserted_a == setting("a", b"2")
    assert list(deltas[types.TEAM].removed_names) == ["t-old"]
    assert list(deltas[types.TEAM].upserts) == []

    later = delta_by_type(only_delta(cache.responses_since(11)[0]))
    assert set(later) == {types.SETTING}
    assert sorted(r.name for r in later[types.SETTING].upserts) == ["a", "b"]


def test_head_state_after_apply() -> None:
    """apply updates the head's resources and version."""
    cache = SnapshotCache()
    cache.reset(1, {types.SETTING: [setting("a")]})
    cache.apply(2, {(types.SETTING, "a"): None, (types.TEAM, "t"): team("t")})
    assert cache.version == 2
    assert cache.resource_count() == 1
    _, chunks, _ = snapshot_parts(cache.responses_since(None)[0])
    assert [r.name for c in chunks for r in c.resources] == ["t"]


def test_version_older_than_history_gets_full_snapshot() -> None:
    """A version that fell out of the bounded history is answered with a full snapshot."""
    cache = SnapshotCache(history=2)
    cache.reset(1, {})
    for version in (2, 3, 4):
        cache.apply(version, {(types.SETTING, f"s{version}"): setting(f"s{version}")})
    responses, head = cache.responses_since(1)
    assert head == 4
    begin, chunks, _ = snapshot_parts(responses)
    assert begin.version == 4
    assert sorted(r.name for c in chunks for r in c.resources) == ["s2", "s3", "s4"]
    assert not is_full_snapshot(cache.responses_since(2)[0])
    assert only_delta(cache.responses_since(2)[0]).from_version == 2


@pytest.mark.parametrize("version", [0, 3, 5, 99])
def test_unknown_versions_get_full_snapshot(version: int) -> None:
    """Versions before the reset, between recorded versions or beyond the head get a full snapshot."""
    cache = SnapshotCache()
    cache.reset(4, {types.SETTING: [setting("a")]})
    cache.apply(6, {(types.SETTING, "b"): setting("b")})
    responses, head = cache.responses_since(version)
    assert head == 6
    begin, _, _ = snapshot_parts(responses)
    assert begin.version == 6


def test_newer_than_head_without_history_gets_full_snapshot() -> None:
    """A data plane claiming a version beyond the head (e.g. after a restart) is resynchronised."""
    cache = SnapshotCache()
    cache.reset(5, {types.SETTING: [setting("a")]})
    responses, head = cache.responses_since(8)
    assert head == 5
    assert snapshot_parts(responses)[0].version == 5


@pytest.mark.parametrize("stale", [2, 3])
def test_apply_stale_version_is_ignored(stale: int) -> None:
    """apply with a version at or below the head changes nothing and wakes nobody."""
    cache = SnapshotCache()
    cache.reset(3, {types.SETTING: [setting("a")]})
    event = cache.subscribe()
    event.clear()
    cache.apply(stale, {(types.SETTING, "a"): None, (types.SETTING, "z"): setting("z")})
    assert cache.version == 3
    assert cache.resource_count() == 1
    assert not event.is_set()
    assert cache.responses_since(3) == ([], 3)
    _, chunks, _ = snapshot_parts(cache.responses_since(None)[0])
    assert [r.name for c in chunks for r in c.resources] == ["a"]


def test_subscribers_woken_on_apply_and_reset() -> None:
    """Every subscriber's event is set on apply and on reset; unsubscribed ones are not."""
    cache = SnapshotCache()
    first, second = cache.subscribe(), cache.subscribe()
    assert not first.is_set()
    assert not second.is_set()
    cache.reset(1, {})
    assert first.is_set()
    assert second.is_set()
    first.clear()
    second.clear()
    changes: Changes = {(types.SETTING, "a"): setting("a")}
    cache.apply(2, changes)
    assert first.is_set()
    assert second.is_set()
    first.clear()
    second.clear()
    cache.unsubscribe(second)
    cache.apply(3, {(types.SETTING, "b"): setting("b")})
    assert first.is_set()
    assert not second.is_set()
    cache.unsubscribe(second)


def test_nonces_are_unique() -> None:
    """next_nonce never repeats within one cache."""
    cache = SnapshotCache()
    nonces = [cache.next_nonce() for _ in range(100)]
    assert len(set(nonces)) == 100
