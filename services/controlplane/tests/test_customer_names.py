"""An end user's config resource name carries its scope, so one id in two tenants is two resources."""

from __future__ import annotations

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.config_types import customer_name
from hydite_controlplane.config.builder import RESOURCE_TABLES, build_resources, to_resource
from hydite_controlplane.models import CustomerRow

CUSTOMERS = RESOURCE_TABLES[types.CUSTOMER]


def _row(customer_id: str, team_id: str | None = None, organization_id: str | None = None) -> CustomerRow:
    return CustomerRow(
        name=customer_name(customer_id, team_id, organization_id), customer_id=customer_id, team_id=team_id,
        organization_id=organization_id, blocked=True,
    )  # fmt: skip


def _published(row: CustomerRow) -> tuple[str, pb.Customer]:
    resource = to_resource(CUSTOMERS, row)
    message = pb.Customer()
    assert resource.body.Unpack(message)
    return resource.name, message


def test_team_organization_and_global_end_users_have_distinct_names_and_carry_their_scope() -> None:
    """team:<team>:<id>, org:<org>:<id> and the bare id (as before) for a global end user."""
    name, message = _published(_row("e1", team_id="team-a"))
    assert name == "team:team-a:e1"
    assert (message.customer_id, message.team_id, message.organization_id) == ("e1", "team-a", "")
    name, message = _published(_row("e1", organization_id="org-1"))
    assert name == "org:org-1:e1"
    assert (message.customer_id, message.team_id, message.organization_id) == ("e1", "", "org-1")
    name, message = _published(_row("e1"))
    assert name == "e1" and (message.team_id, message.organization_id) == ("", "")
    assert message.blocked


def test_one_id_in_every_scope_builds_one_resource_each() -> None:
    """Nothing collapses: the snapshot gets all four end users named e1."""
    rows = [_row("e1", team_id="a"), _row("e1", team_id="b"), _row("e1", organization_id="a"), _row("e1")]
    names = [r.name for r in build_resources(CUSTOMERS, rows).resources]
    assert names == ["team:a:e1", "team:b:e1", "org:a:e1", "e1"]


def test_a_separator_in_a_scope_id_is_escaped() -> None:
    """Team "a:b" with end user "c" and team "a" with end user "b:c" are different names."""
    assert customer_name("c", team_id="a:b") == "team:a%3Ab:c"
    assert customer_name("b:c", team_id="a") == "team:a:b:c"
    assert customer_name("c", team_id="a%3Ab") == "team:a%253Ab:c"
