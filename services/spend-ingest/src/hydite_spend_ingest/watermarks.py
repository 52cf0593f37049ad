"""Publisher watermarks (pure): up to which batch sequence every batch of a publishing process is
ingested, from the sequences seen so far."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PENDING_LIMIT = 10_000
"""Sequences kept above the watermark at most; past it the oldest are forgotten (the watermark
then stays below them until the gap is filled, which it can no longer tell)."""


def node_of(publisher_id: str) -> str:
    """The node a publishing process belongs to: its id without the incarnation (`node.1a2b3c4d`)."""
    return publisher_id.rsplit(".", 1)[0]


@dataclass(frozen=True, slots=True)
class PublisherState:
    """One spend_publishers row: the contiguous watermark, the highest sequence seen, and the
    sequences seen above the watermark (ascending)."""

    publisher_id: str
    watermark: int = 0
    max_seq: int = 0
    pending: tuple[int, ...] = ()


def advanced(state: PublisherState, seqs: Iterable[int]) -> PublisherState:
    """The state once the batches with these sequences are ingested too."""
    watermark = state.watermark
    seen = set(state.pending)
    seen.update(seq for seq in seqs if seq > watermark)
    max_seq = max(state.max_seq, max(seen, default=0))
    while watermark + 1 in seen:
        watermark += 1
        seen.remove(watermark)
    pending = sorted(seen)
    if len(pending) > PENDING_LIMIT:
        log.warning(
            "publisher %s: %d batches seen above its watermark %d; forgetting the oldest %d",
            state.publisher_id,
            len(pending),
            watermark,
            len(pending) - PENDING_LIMIT,
        )
        pending = pending[-PENDING_LIMIT:]
    return PublisherState(state.publisher_id, watermark, max_seq, tuple(pending))
