"""Limit gossip: every interval this replica's report goes out on a NATS core subject, and its
peers' reports come in (`limits.shares` does the arithmetic). Nothing here is on the request path.

A report too large for one message goes out in parts, taken only when every part came; a lost part
loses that one report, and the next one, cumulative, makes it good. What a peer sends is bounded
and checked field by field: a malformed report is counted and dropped, never applied.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from hydite_dataplane.limits.shares import ClusterShares, Report, ReportEntry

log = logging.getLogger(__name__)

ENTRIES_PER_PART = 4_000
"""Entries of one message: a few hundred bytes each, well under NATS's default 1 MiB payload."""
MAX_PARTS = 64
MAX_TEXT = 512
MAX_GIFTS_PER_ENTRY = 64


class GossipCounters:
    """What the gossip did since start (exported on /metrics)."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.malformed = 0
        self.send_failures = 0


def encode_parts(report: Report) -> list[bytes]:
    """The report as one or more messages."""
    rows = [
        [e.key, max(e.limit, 0.0), max(e.used, 0.0), max(e.deficit, 0.0), e.given, max(e.fraction, 0.0)]
        for e in report.entries
    ]
    chunks = [rows[i : i + ENTRIES_PER_PART] for i in range(0, len(rows), ENTRIES_PER_PART)] or [[]]
    head = {"n": report.node_id, "i": report.instance, "e": report.epoch, "s": report.seq}
    return [
        orjson.dumps({**head, "p": index, "c": len(chunks), "r": chunk}) for index, chunk in enumerate(chunks)
    ]


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ValueError("bad text")
    return value


ROUNDING = 1e-9
"""A sum of float additions and subtractions that should be 0 may come out a hair below it."""


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("bad number")
    number = float(value)
    if not math.isfinite(number) or number < -ROUNDING:
        raise ValueError("bad number")
    return max(number, 0.0)


MAX_GIFTS_TOTAL = 1e6
"""Gifts to one peer are cumulative over an epoch: a share that moves back and forth between busy
replicas adds up to more than the whole limit, so they are bounded only to stay finite."""


def _entry(row: Any) -> ReportEntry:
    if not isinstance(row, list) or len(row) != 6 or not isinstance(row[4], dict):
        raise ValueError("bad entry")
    gifts = row[4]
    if len(gifts) > MAX_GIFTS_PER_ENTRY:
        raise ValueError("too many gifts")
    given = {_text(node): min(MAX_GIFTS_TOTAL, _amount(part)) for node, part in gifts.items()}
    fraction = min(1.0, _amount(row[5]))
    return ReportEntry(_text(row[0]), _amount(row[1]), _amount(row[2]), _amount(row[3]), given, fraction)


class ReportAssembler:
    """Puts the parts of each peer's report back together."""

    def __init__(self) -> None:
        self.malformed_entries = 0
        self._parts: dict[str, tuple[tuple[str, str, int], dict[int, list[ReportEntry]], int]] = {}

    def add(self, data: bytes) -> Report | None:
        """The whole report once its last part came (ValueError for a malformed part)."""
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError("not JSON") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("r"), list):
            raise ValueError("not a report")
        node, instance, epoch = _text(raw.get("n")), _text(raw.get("i")), _text(raw.get("e"))
        seq, part, count = raw.get("s"), raw.get("p"), raw.get("c")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, part, count)):
            raise ValueError("bad numbering")
        assert isinstance(seq, int) and isinstance(part, int) and isinstance(count, int)
        if not 1 <= count <= MAX_PARTS or not 0 <= part < count or len(raw["r"]) > ENTRIES_PER_PART:
            raise ValueError("bad numbering")
        entries = []
        for row in raw["r"]:
            try:
                entries.append(_entry(row))
            except (ValueError, TypeError):
                # One bad entry costs that limit's figures from this peer, not the whole report.
                self.malformed_entries += 1
        if count == 1:
            self._parts.pop(node, None)
            return Report(node, instance, epoch, seq, tuple(entries))
        identity = (instance, epoch, seq)
        held = self._parts.get(node)
        if held is None or held[0] != identity:
            held = (identity, {}, count)
            self._parts[node] = held
        held[1][part] = entries
        if len(held[1]) < count:
            return None
        del self._parts[node]
        whole = tuple(entry for index in range(count) for entry in held[1][index])
        return Report(node, instance, epoch, seq, whole)


class LimitGossip:
    """Sends this replica's report every interval and applies its peers'."""

    def __init__(
        self,
        shares: ClusterShares,
        subject: str,
        interval_seconds: float,
        members: Callable[[], Iterable[str]],
    ) -> None:
        self._shares = shares
        self._subject = subject
        self._interval = interval_seconds
        self._members = members
        self._client: NatsClient | None = None
        self._assembler = ReportAssembler()
        self.counters = GossipCounters()
        self.on_tick: Callable[[], None] = lambda: None
        """Upkeep run every round (the budget ledger's pruning)."""

    @property
    def malformed_entries(self) -> int:
        """Entries of peers' reports dropped as malformed (the rest of each report applied)."""
        return self._assembler.malformed_entries

    async def subscribe(self, client: NatsClient) -> None:
        """Start hearing peers on this connection (a NatsLink step)."""
        await client.subscribe(self._subject, cb=self._on_message, pending_msgs_limit=100_000)
        self._client = client

    async def _on_message(self, message: Msg) -> None:
        try:
            report = self._assembler.add(message.data)
        except (ValueError, TypeError, AttributeError):
            self.counters.malformed += 1
            return
        if report is not None:
            self.counters.received += 1
            self._shares.receive(report)

    async def run(self) -> None:
        """Every interval: members from the snapshot, the connection's state, a rebalance and a
        report (until cancelled)."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("limit gossip tick failed")

    async def tick(self) -> None:
        """One round."""
        shares = self._shares
        shares.set_members(self._members())
        client = self._client
        connected = client is not None and client.is_connected
        shares.set_connected(connected)
        report = shares.report()
        self.on_tick()
        if not connected or client is None:
            return
        try:
            for part in encode_parts(report):
                await client.publish(self._subject, part)
            self.counters.sent += 1
        except Exception as exc:
            self.counters.send_failures += 1
            log.warning("limit report not sent (%s)", type(exc).__name__)
