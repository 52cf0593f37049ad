"""Cluster-wide limits without a network hop: this replica's share of every active limit.

Each replica holds a fraction of each limit and admits only within it; the fractions of all
replicas sum to at most 1, so what they admit together never exceeds the limit, even in a burst
shorter than the gossip interval. A replica's fraction is its base, plus what peers gave it, minus
what it gave. It gives only from its own unused part, and takes only what a peer announced giving
(after the peer has stopped using it), so fractions are conserved whatever reports are lost or late.
Gifts are cumulative within an epoch, so a lost report is made good by the next one, and go where
the demand is: to the peer that refused the most since its last report.

An epoch ends every `epoch_seconds` of wall-clock time: each share's fraction becomes its base and
the gifts start over, so the state held stays small and fractions stay conserved. While nobody
refuses, a replica holding more than its equal part gives the excess back to one holding less, so
an idle limit returns to the equal split and is forgotten. When the members change (the control
plane's list of connected data planes), the split starts over: every limit in use gets as base what
this replica uses of it plus an equal part of what is left, from the latest reports. A limit first
seen is split equally (in whole units for whole limits).

This module is arithmetic only: the limiter and budgets ask it for shares, `limits.gossip` carries
its reports.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hydite_dataplane.config.snapshot import Snapshot

Meter = Callable[[], float]
"""What a limit's counter uses now on this replica, in the limit's units."""

CONSOLIDATE_ABOVE = 0.5
"""A replica holding more than this fraction of a limit may admit one request that crosses it
(at most one replica can): a budget smaller than one request's cost still admits that request."""


def _no_use() -> float:
    return 0.0


@dataclass(slots=True)
class Share:
    """This replica's part of one limit (in the current epoch)."""

    key: str
    limit: float
    """The limit in its units, as last seen here (for a budget: what is left of it)."""
    fraction: float
    default: float
    """Its equal part among the members."""
    given: dict[str, float] = field(default_factory=dict)
    """Fractions given to each peer this epoch, cumulative."""
    received: dict[str, float] = field(default_factory=dict)
    """Fractions each peer announced giving this replica this epoch, cumulative."""
    received_before: dict[str, float] = field(default_factory=dict)
    """The same for the epoch before, whose gifts may still arrive from a peer yet to move on."""
    peer_used: dict[str, float] = field(default_factory=dict)
    """What each peer last reported using, in units."""
    peer_deficit: dict[str, float] = field(default_factory=dict)
    """What each peer last reported refusing, in units."""
    peer_total: float = 0.0
    """The sum of peer_used."""
    peer_fraction: dict[str, float] = field(default_factory=dict)
    """What fraction each peer last reported holding."""
    meter: Meter = _no_use
    deficit: float = 0.0
    """Units refused here since the last report."""
    admitted: float = 0.0
    """Units admitted here since the last report."""
    retired: bool = False
    """Forgotten (idle): whoever holds it asks for the limit's share again."""


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One limit in a replica's report."""

    key: str
    limit: float
    used: float
    deficit: float
    given: dict[str, float]
    fraction: float


@dataclass(frozen=True, slots=True)
class Report:
    """What one replica says about the limits it holds: sent every gossip interval."""

    node_id: str
    instance: str
    """Which process of the node: a restarted one numbers its reports from 1 again."""
    epoch: str
    seq: int
    entries: tuple[ReportEntry, ...]


@dataclass(slots=True)
class _Peer:
    instance: str
    epoch: str
    seq: int
    heard_at: float
    keys: frozenset[str]


def members_digest(members: Iterable[str]) -> str:
    """A short name for a set of members (two replicas with the same set agree on it)."""
    return hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:12]


WHOLE_UNIT_KEYS = ("|r", "|t", "|p")
"""Shares of requests, tokens and requests in flight are split in whole units; budgets are not."""
SETTLED = 1e-9
"""Fractions this close are equal."""
UNIT_SLACK = 1e-6
"""What a limit counted in whole units admits beyond fraction × limit: fractions moved between
replicas gather float rounding (a whole 1.0 may come back as 0.9999999999999999), and that must not
cost the last request of a limit."""


def whole_base(limit: float, members: tuple[str, ...], node_id: str, whole: bool = True) -> float:
    """This replica's base fraction of a limit split equally among members, in whole units when
    the limit is whole (60 among 3: 20 each; 100 among 3: 34, 33, 33)."""
    count = len(members)
    if not whole or limit <= 0 or count <= 1:
        return 1.0 / max(count, 1)
    if limit != math.floor(limit) or limit < count:
        return 1.0 / count
    rank = members.index(node_id) if node_id in members else count - 1
    units = int(limit) // count + (1 if rank < int(limit) % count else 0)
    return units / limit


class ClusterShares:
    """Every share this replica holds, the latest report of each peer, and the rebalancing."""

    def __init__(
        self,
        node_id: str,
        *,
        epoch_seconds: float = 30.0,
        peer_timeout_seconds: float = 2.0,
        fallback: str = "share",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id
        self.instance = uuid.uuid4().hex[:12]
        self._epoch_seconds = epoch_seconds
        self._peer_timeout = peer_timeout_seconds
        self._fallback = fallback
        self._clock = clock
        self._wall_clock = wall_clock
        self.members: tuple[str, ...] = (node_id,)
        self.followed: Snapshot | None = None
        """The snapshot the members were last taken from."""
        self._shares: dict[str, Share] = {}
        self._peers: dict[str, _Peer] = {}
        self._period = self._period_now()
        self.epoch = self._epoch_name()
        self._epoch_before: str | None = None
        """The epoch compacted last: gifts its reports announce still count."""
        self._seq = 0
        self.connected = False
        """Whether reports go out and come in (NATS is up)."""
        self.override: float | None = 1.0
        """The fraction every share admits by instead of its own: while not connected, the
        fallback (an equal part, or the whole limit for "local"); None while connected."""
        self.epochs_started = 0
        self._set_override()

    # ------------------------------------------------------------------ membership and mode

    def follow(self, snapshot: Snapshot) -> None:
        """Take the members from snapshot, if it is not the one already followed (called on the
        request path: an identity check)."""
        if snapshot is not self.followed:
            self.followed = snapshot
            self.set_members(snapshot.nodes.keys())

    def set_members(self, members: Iterable[str]) -> None:
        """The data planes connected now (from the snapshot); this one is always a member."""
        ordered = tuple(sorted({*members, self.node_id}))
        if ordered != self.members:
            self.members = ordered
            self._set_override()
            self._new_epoch()

    def set_connected(self, connected: bool) -> None:
        """NATS came up or went away."""
        if connected != self.connected:
            self.connected = connected
            self._set_override()

    def _set_override(self) -> None:
        if self.connected:
            self.override = None
        else:
            self.override = 1.0 if self._fallback == "local" else 1.0 / len(self.members)

    @property
    def mode(self) -> str:
        """ "cluster" while reports flow, "fallback" while NATS is lost."""
        return "cluster" if self.connected else "fallback"

    def peers_heard(self) -> list[str]:
        """Members heard from within the peer timeout."""
        now = self._clock()
        return sorted(
            node
            for node, peer in self._peers.items()
            if node in self.members and now - peer.heard_at < self._peer_timeout
        )

    @property
    def tracked(self) -> int:
        """Limits this replica holds a share of."""
        return len(self._shares)

    # ------------------------------------------------------------------ the request path

    def share(self, key: str, limit: float, meter: Meter) -> Share:
        """The share of a limit, created at its first use here; the limit and meter kept current."""
        share = self._shares.get(key)
        if share is None:
            share = self._shares[key] = self._new_share(key, limit)
        share.limit = limit
        share.meter = meter
        return share

    def _new_share(self, key: str, limit: float) -> Share:
        default = whole_base(limit, self.members, self.node_id, key.endswith(WHOLE_UNIT_KEYS))
        return Share(key, limit, default, default)

    def fraction(self, share: Share) -> float:
        """The fraction a share admits by now."""
        return share.fraction if self.override is None else self.override

    def may_cross(self, share: Share) -> bool:
        """Whether this replica may admit one request that does not fit in what is left of its
        share (but something is left): only the one replica holding most of the limit (the
        admission paths test the same inline). A replica
        refusing such a request says so in its report, and the others' spare goes to it, so a
        budget smaller than one request's cost admits that one request within a round or two."""
        if self.override is not None:
            return self.override > CONSOLIDATE_ABOVE
        return share.fraction > CONSOLIDATE_ABOVE

    # ------------------------------------------------------------------ reports

    def receive(self, report: Report) -> None:
        """A peer's report: what it uses and refuses, and what it gave this replica."""
        node = report.node_id
        if node == self.node_id:
            return
        now = self._clock()
        peer = self._peers.get(node)
        if (
            peer is not None
            and (report.instance, report.epoch) == (peer.instance, peer.epoch)
            and report.seq <= peer.seq
        ):
            return  # late or repeated
        same_epoch = report.epoch == self.epoch
        epoch_before = not same_epoch and report.epoch == self._epoch_before
        keys = frozenset(entry.key for entry in report.entries)
        if peer is not None:
            for gone in peer.keys - keys:
                if (share := self._shares.get(gone)) is not None:
                    share.peer_used.pop(node, None)
                    share.peer_deficit.pop(node, None)
                    share.peer_fraction.pop(node, None)
                    share.peer_total = sum(share.peer_used.values())
        self._peers[node] = _Peer(report.instance, report.epoch, report.seq, now, keys)
        for entry in report.entries:
            share = self._shares.get(entry.key)
            gift = entry.given.get(self.node_id, 0.0) if same_epoch or epoch_before else 0.0
            if share is None:
                if not gift and not entry.used and not entry.deficit:
                    continue
                share = self._shares[entry.key] = self._new_share(entry.key, entry.limit)
            share.peer_total += entry.used - share.peer_used.get(node, 0.0)
            share.peer_fraction[node] = entry.fraction
            share.peer_used[node] = entry.used
            share.peer_deficit[node] = entry.deficit
            received = share.received if same_epoch else share.received_before
            if gift > received.get(node, 0.0):
                share.fraction += gift - received.get(node, 0.0)
                received[node] = gift

    def report(self) -> Report:
        """Rebalance toward the peers refusing the most, then this replica's report (sent every
        gossip interval); an epoch that ended starts anew first."""
        if self._period_now() != self._period:
            self._compact()
        self._seq += 1
        entries = []
        idle: list[str] = []
        fresh = self._fresh_peers()
        for share in self._shares.values():
            used = share.meter()
            if fresh and share.limit > 0:
                self._rebalance(share, used, fresh)
            at_default = abs(share.fraction - share.default) < SETTLED
            if used or share.deficit or share.given or share.received or not at_default:
                entries.append(
                    ReportEntry(
                        share.key, share.limit, used, share.deficit, dict(share.given), share.fraction
                    )
                )
            elif not any(share.peer_used.values()):
                # Nothing to remember: made again, with its equal part, at its next use.
                idle.append(share.key)
            share.deficit = share.admitted = 0.0
        for key in idle:
            self._shares.pop(key).retired = True
        return Report(self.node_id, self.instance, self.epoch, self._seq, tuple(entries))

    def _fresh_peers(self) -> set[str]:
        now = self._clock()
        return {
            node
            for node, peer in self._peers.items()
            if peer.epoch == self.epoch and node in self.members and now - peer.heard_at < self._peer_timeout
        }

    def _rebalance(self, share: Share, used: float, fresh: set[str]) -> None:
        """Give what this replica does not need of its share to the peer refusing the most."""
        neediest = max(
            (
                (deficit, node)
                for node, deficit in share.peer_deficit.items()
                if deficit > 0 and node in fresh
            ),
            default=None,
            key=lambda candidate: (candidate[0], _reverse(candidate[1])),
        )
        if neediest is None:
            self._give_back(share, used, fresh)
            return
        deficit, node = neediest
        spare = share.fraction * share.limit - used
        if share.deficit <= 0:
            # Keep what this replica admitted since its last report (its own demand goes on).
            give = min(spare - share.admitted, deficit)
        elif (deficit, _reverse(node)) > (share.deficit, _reverse(self.node_id)):
            # Both refuse: what is left here is worth more where it may add up to a whole request.
            give = spare
        else:
            return
        if give > 0:
            self._give(share, node, give / share.limit)

    def _give_back(self, share: Share, used: float, fresh: set[str]) -> None:
        """No peer refuses: what this replica holds over its equal part, and does not use, goes to
        the peer furthest under its own (so an idle limit returns to the equal split). Not while
        this replica refuses itself: it would only be given back, and stay in flight between them."""
        over = share.fraction - share.default
        if over < SETTLED or share.deficit > 0:
            return
        spare = share.fraction - used / share.limit
        short, node = max(
            (
                (self._peer_default(share, peer) - fraction, peer)
                for peer, fraction in share.peer_fraction.items()
                if peer in fresh
            ),
            default=(0.0, ""),
        )
        part = min(over, spare, short)
        if part >= SETTLED:
            self._give(share, node, part)

    def _peer_default(self, share: Share, node: str) -> float:
        return whole_base(share.limit, self.members, node, share.key.endswith(WHOLE_UNIT_KEYS))

    @staticmethod
    def _give(share: Share, node: str, part: float) -> None:
        share.given[node] = share.given.get(node, 0.0) + part
        share.fraction -= part

    # ------------------------------------------------------------------ epochs

    def _period_now(self) -> int:
        return int(self._wall_clock() // self._epoch_seconds)

    def _epoch_name(self) -> str:
        return f"{self._period}.{members_digest(self.members)}"

    def _compact(self) -> None:
        """The epoch's end: each fraction stays as it is and the gifts start over. Conserved: a
        peer still in the old epoch may give in it, and its reports' gifts still count here, against
        what this replica had received in that epoch; a report of an older epoch gives nothing."""
        self._epoch_before = self.epoch
        self._period = self._period_now()
        self.epoch = self._epoch_name()
        self.epochs_started += 1
        for share in self._shares.values():
            share.given.clear()
            share.received_before = share.received
            share.received = {}

    def _new_epoch(self) -> None:
        """The members changed: gifts start over, and every limit in use gets as base what this
        replica uses of it plus an equal part of what is left, by the latest reports (every replica
        computes the same, up to what was admitted since them)."""
        self._period = self._period_now()
        self.epoch = self._epoch_name()
        self.epochs_started += 1
        count = len(self.members)
        for key, share in self._shares.items():
            own = share.meter()
            used = own + sum(u for node, u in share.peer_used.items() if node in self.members)
            limit = share.limit
            share.default = whole_base(limit, self.members, self.node_id, key.endswith(WHOLE_UNIT_KEYS))
            in_use = limit > 0 and used > 0
            share.fraction = (own + max(0.0, limit - used) / count) / limit if in_use else share.default
            share.given.clear()
            share.received.clear()
            share.received_before.clear()
        self._epoch_before = None  # the fractions were just computed anew: old gifts are in them


def _reverse(node: str) -> tuple[int, ...]:
    """Orders node ids so that the smaller id wins a tie under max()."""
    return tuple(-ord(character) for character in node)
