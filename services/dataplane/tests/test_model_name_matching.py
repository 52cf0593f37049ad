"""Wildcard model groups, wildcard allowlist entries and model access groups, as LiteLLM has them."""

from __future__ import annotations

from collections.abc import Callable

import immutables

from hydite_common.allowlists import list_permits, permits
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot, access_groups, wildcard_groups

TargetBuilder = Callable[..., DeploymentTarget]


def _snapshot(groups: dict[str, tuple[DeploymentTarget, ...]]) -> Snapshot:
    mapped = immutables.Map(groups)
    return Snapshot(1, {}, mapped, wildcard_groups(mapped))


def test_the_requested_name_fills_the_wildcard_of_the_provider_model(make_target: TargetBuilder) -> None:
    snapshot = _snapshot(
        {
            "*": (make_target("any", model_name="*", upstream_model="*"),),
            "openai/*": (make_target("oa", model_name="openai/*", upstream_model="*"),),
            "anthropic/*": (
                make_target("an", model_name="anthropic/*", provider="anthropic", upstream_model="*"),
            ),
        }
    )
    (any_target,) = snapshot.deployments_for("gpt-3.5-turbo-0125") or ()
    assert (any_target.deployment_id, any_target.upstream_model) == ("any", "gpt-3.5-turbo-0125")
    assert any_target.model_name == "gpt-3.5-turbo-0125"
    # The most specific pattern wins over `*`.
    (openai_target,) = snapshot.deployments_for("openai/gpt-4o") or ()
    assert (openai_target.deployment_id, openai_target.upstream_model) == ("oa", "gpt-4o")
    (claude,) = snapshot.deployments_for("anthropic/claude-3-5-haiku-20241022") or ()
    assert (claude.provider, claude.upstream_model) == ("anthropic", "claude-3-5-haiku-20241022")
    # Resolved once per version, then served from the snapshot's table.
    assert snapshot.deployments_for("openai/gpt-4o") is snapshot.deployments_for("openai/gpt-4o")


def test_an_exact_group_wins_and_a_fixed_provider_model_is_kept(make_target: TargetBuilder) -> None:
    snapshot = _snapshot(
        {
            "groq/*": (make_target("g", model_name="groq/*", upstream_model="llama-fixed"),),
            "groq/special": (make_target("s", model_name="groq/special", upstream_model="special-v2"),),
        }
    )
    assert [t.deployment_id for t in snapshot.deployments_for("groq/special") or ()] == ["s"]
    assert [t.upstream_model for t in snapshot.deployments_for("groq/llama3") or ()] == ["llama-fixed"]
    assert snapshot.deployments_for("mistral/small") is None


def test_no_pattern_means_no_wildcard_lookup(make_target: TargetBuilder) -> None:
    snapshot = _snapshot({"m": (make_target(),)})
    assert snapshot.wildcards == ()
    assert snapshot.deployments_for("other") is None


def test_wildcard_allowlist_entries() -> None:
    assert list_permits(["openai/*"], "openai/gpt-4o")
    assert not list_permits(["openai/*"], "anthropic/claude")
    assert list_permits(["gpt-4*", "x"], "gpt-4o-mini")
    assert not list_permits(["gpt-4*"], "gpt-3.5")
    # Literal characters stay literal.
    assert not list_permits(["a.b/*"], "axb/c")
    assert permits([[], ["*"], ["claude-*"]], "claude-3")


def test_access_groups_allow_their_models(make_target: TargetBuilder) -> None:
    groups = {
        "a": (make_target("a1", model_name="a", model_info={"access_groups": ["beta", "all"]}),),
        "b": (make_target("b1", model_name="b", model_info={"access_groups": ["all", 7]}),),
        "c": (make_target("c1", model_name="c"),),
    }
    snapshot = Snapshot(1, {}, immutables.Map(groups), (), access_groups(groups))
    assert snapshot.access_groups == {"beta": frozenset({"a"}), "all": frozenset({"a", "b"})}
    assert permits([["beta"]], "a", snapshot.access_groups)
    assert not permits([["beta"]], "b", snapshot.access_groups)
    assert permits([["all"], ["b", "x"]], "b", snapshot.access_groups)
    assert not permits([["all"]], "c", snapshot.access_groups)
