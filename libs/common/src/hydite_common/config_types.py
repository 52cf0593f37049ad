"""Type URLs of the config snapshot's resource collections, and how resources are named (shared by
the control plane's builder and the data plane's decoder and lookups)."""

from __future__ import annotations

from google.protobuf.message import Message

from hydite.config.v1 import config_pb2 as pb

_PREFIX = "type.googleapis.com/"

CONFIG_SCHEMA_VERSION = 1
"""The config snapshot schema's major version, sent with every snapshot and delta batch. Bump it
only for a change an older data plane would misread (a field's meaning changed); additive changes
keep it, since protobuf readers skip fields and resource types they do not know."""

RESOURCE_MESSAGES: dict[str, type[Message]] = {
    _PREFIX + cls.DESCRIPTOR.full_name: cls
    for cls in (
        pb.VirtualKey,
        pb.User,
        pb.Team,
        pb.Organization,
        pb.Customer,
        pb.KeyGroup,
        pb.Budget,
        pb.Deployment,
        pb.Setting,
        pb.Tag,
        pb.GlobalLimits,
        pb.DataPlaneNode,
    )
}


def type_url(message_cls: type[Message]) -> str:
    """The Any type URL of a resource message class."""
    return _PREFIX + message_cls.DESCRIPTOR.full_name


VIRTUAL_KEY = type_url(pb.VirtualKey)
USER = type_url(pb.User)
TEAM = type_url(pb.Team)
ORGANIZATION = type_url(pb.Organization)
CUSTOMER = type_url(pb.Customer)
KEY_GROUP = type_url(pb.KeyGroup)
BUDGET = type_url(pb.Budget)
DEPLOYMENT = type_url(pb.Deployment)
SETTING = type_url(pb.Setting)
TAG = type_url(pb.Tag)
GLOBAL_LIMITS = type_url(pb.GlobalLimits)
DATA_PLANE_NODE = type_url(pb.DataPlaneNode)

DROP_PARAMS_SETTING = "drop_params"
"""Proxy-wide LiteLLM `drop_params` (true): a request or deployment that says nothing drops."""
ADDITIONAL_DROP_PARAMS_SETTING = "additional_drop_params"
"""Proxy-wide parameters never sent to any provider (a JSON list of names)."""
STORE_PROMPTS_SETTING = "store_prompts_in_spend_logs"
"""Proxy-wide LiteLLM `store_prompts_in_spend_logs` (true): store every request's prompt and response
with its spend row, as a key's or team's `store_prompts` does for theirs."""


def customer_name(customer_id: str, team_id: str | None = None, organization_id: str | None = None) -> str:
    """The config resource name of an end user: `team:<team>:<id>`, `org:<organization>:<id>`, or
    the bare id for a global one. `%` and `:` in the scope id are escaped, so names never collide
    (a global id that begins with `team:` or `org:` is refused when created)."""
    if team_id:
        return f"team:{_scope_part(team_id)}:{customer_id}"
    if organization_id:
        return f"org:{_scope_part(organization_id)}:{customer_id}"
    return customer_id


def _scope_part(scope_id: str) -> str:
    return scope_id.replace("%", "%25").replace(":", "%3A")


SCOPED_NAME_PREFIXES = ("team:", "org:")
"""How scoped resource names begin; a global end-user id may not."""
