"""Stage 4 (admit): rate limits (`limiter`) and budgets (`budgets`) held across every data plane by
shares of each limit (`shares`) that move with the demand through the limit gossip (`gossip`);
committed spend comes from the spend totals bucket (`spend_view`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydite_dataplane.limits.gossip import LimitGossip
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.limits.spend_view import SpendView


@dataclass
class ClusterLimits:
    """The cluster-wide side of limits: shares, their gossip and the committed spend."""

    shares: ClusterShares
    gossip: LimitGossip
    spend: SpendView

    def status(self) -> dict[str, Any]:
        """What `/health/readiness` says of them."""
        shares = self.shares
        return {
            "mode": shares.mode,
            "members": list(shares.members),
            "peers_heard": shares.peers_heard(),
            "nats": shares.connected,
            "spend_totals_loaded": self.spend.loaded,
        }
