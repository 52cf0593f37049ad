"""Type URLs of the config snapshot's resource collections (shared by builder and decoder)."""

from __future__ import annotations

from google.protobuf.message import Message

from hydite.config.v1 import config_pb2 as pb

_PREFIX = "type.googleapis.com/"

RESOURCE_MESSAGES: dict[str, type[Message]] = {
    _PREFIX + cls.DESCRIPTOR.full_name: cls
    for cls in (
        pb.VirtualKey,
        pb.User,
        pb.Team,
        pb.Organization,
        pb.Customer,
        pb.KeyGroup,
        pb.Deployment,
        pb.Setting,
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
DEPLOYMENT = type_url(pb.Deployment)
SETTING = type_url(pb.Setting)
