"""Tags in the config snapshot: a tag row becomes a `pb.Tag` (name, limits, models, metadata) in the
version that wrote it and leaves in the one that deleted it; a row no Tag can carry stands in as a
tag that refuses every request, never as no limit at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.devstack import Stack, StackConfig
from hydite_controlplane.config.builder import RESOURCE_TABLES, build_resources, tag_message
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.follower import ChangeFollower
from hydite_controlplane.models.tags import TagRow
from hydite_controlplane.store.resources import delete_resources, save_resources

TAGS = RESOURCE_TABLES[types.TAG]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Postgres only (these tests call the control plane's code, no service runs)."""
    dependencies = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("tags"))))
    try:
        dependencies.start_dependencies()
        yield dependencies
    finally:
        dependencies.remove()


def test_a_tag_carries_its_limits_models_and_metadata() -> None:
    """Every limit column of the tag, its models and its metadata are in its message."""
    row = TagRow(
        name="eng", models=["gpt-x", "dep-1"], max_budget=50.0, soft_budget=40.0, budget_duration="1mo",
        rpm_limit=10, tpm_limit=1000, max_parallel_requests=2, model_rpm_limit={"gpt-x": 3},
        metadata_={"cost_center": "eng"},
    )  # fmt: skip
    message = tag_message(row)
    assert message.name == "eng"
    assert list(message.models) == ["gpt-x", "dep-1"]
    assert orjson.loads(message.metadata_json) == {"cost_center": "eng"}
    assert message.limits == pb.Limits(
        max_budget=50.0, soft_budget=40.0, budget_duration="1mo", rpm_limit=10, tpm_limit=1000,
        max_parallel_requests=2, model_rpm_limit={"gpt-x": 3},
    )  # fmt: skip


def test_an_unbuildable_tag_stands_in_refusing_everything() -> None:
    """A tag whose metadata JSON cannot carry is quarantined and published with no budget and no requests."""
    built = build_resources(TAGS, [TagRow(name="bad", metadata_={"n": float("nan")}), TagRow(name="ok")])
    assert list(built.quarantined) == ["bad"]
    messages = {}
    for resource in built.resources:
        tag = pb.Tag()
        assert resource.body.Unpack(tag)
        messages[resource.name] = tag
    assert messages["bad"].limits == pb.Limits(max_budget=0.0, rpm_limit=0)
    assert messages["bad"].limits.HasField("max_budget") and messages["bad"].limits.HasField("rpm_limit")
    assert not messages["ok"].limits.HasField("max_budget")


async def test_a_tag_written_and_deleted_reaches_and_leaves_the_snapshot(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The follower applies a tag's write and its delete as every other resource's."""
    cache = SnapshotCache()
    follower = ChangeFollower(cache, sessions, libpq_url="")
    await follower.load_full()
    async with sessions() as session:
        await save_resources(TagRow(name="ops", rpm_limit=5), session=session)
        await session.commit()
    await follower.catch_up()
    resource = cache.resource((types.TAG, "ops"))
    assert resource is not None
    tag = pb.Tag()
    assert resource.body.Unpack(tag)
    assert tag.limits.rpm_limit == 5
    async with sessions() as session:
        row = await session.get(TagRow, "ops")
        assert row is not None
        await delete_resources(row, session=session)
        await session.commit()
    await follower.catch_up()
    assert cache.resource((types.TAG, "ops")) is None
