"""Gateway resource ids: they round-trip for their owner and are useless to anyone else."""

from __future__ import annotations

from hydite.config.v1 import config_pb2 as pb
from hydite_dataplane.resources.ids import ResourceIdCodec, ResourceRef, owner_of

CODEC = ResourceIdCodec("salt-one")


def test_round_trip_for_the_owner() -> None:
    """An id decodes back to its deployment and provider id, even when those contain underscores."""
    gateway_id = CODEC.encode("resp_abc_123", "dep_1", "team:t1")
    assert gateway_id.startswith("resp_hyd_")
    assert CODEC.decode(gateway_id, "team:t1") == ResourceRef("dep_1", "resp_abc_123")


def test_other_owners_forgeries_and_foreign_ids_decode_to_nothing() -> None:
    """Another owner, a changed byte, another salt key or a provider's raw id all give None."""
    gateway_id = CODEC.encode("resp_abc", "dep", "team:t1")
    assert CODEC.decode(gateway_id, "team:t2") is None
    assert CODEC.decode(gateway_id[:-1] + ("0" if gateway_id[-1] != "0" else "1"), "team:t1") is None
    assert ResourceIdCodec("salt-two").decode(gateway_id, "team:t1") is None
    assert CODEC.decode("resp_abc", "team:t1") is None
    assert CODEC.decode("resp_hyd_zz_zz", "team:t1") is None


def test_owner_is_team_then_user_then_key() -> None:
    """Responses belong to the key's team, else its user, else the key."""
    assert owner_of(pb.VirtualKey(team_id="t", user_id="u"), "h") == "team:t"
    assert owner_of(pb.VirtualKey(user_id="u"), "h") == "user:u"
    assert owner_of(pb.VirtualKey(), "h") == "key:h"
