"""Publisher watermarks (pure): contiguous sequences, gaps, repeats and the bound on pending."""

from __future__ import annotations

import logging

import pytest

from hydite_spend_ingest.watermarks import PENDING_LIMIT, PublisherState, advanced, node_of


def test_contiguous_sequences_move_the_watermark() -> None:
    """Sequences 1..3 in any order leave the watermark at 3 and nothing pending."""
    assert advanced(PublisherState("n.1"), [3, 1, 2]) == PublisherState("n.1", 3, 3, ())


def test_a_gap_holds_the_watermark_until_it_is_filled() -> None:
    """Above a gap sequences wait in pending; filling it releases them."""
    held = advanced(PublisherState("n.1"), [1, 3, 5])
    assert held == PublisherState("n.1", 1, 5, (3, 5))
    assert advanced(held, [2]) == PublisherState("n.1", 3, 5, (5,))
    assert advanced(advanced(held, [2]), [4]) == PublisherState("n.1", 5, 5, ())


def test_repeated_and_old_sequences_change_nothing() -> None:
    """A sequence at or below the watermark, or already pending, is a redelivery."""
    state = PublisherState("n.1", 4, 7, (7,))
    assert advanced(state, [1, 4, 7]) == state


def test_pending_keeps_the_newest_within_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    """Past PENDING_LIMIT the oldest pending sequences are forgotten, and that is logged."""
    seqs = range(3, PENDING_LIMIT + 5)
    with caplog.at_level(logging.WARNING):
        state = advanced(PublisherState("n.1"), seqs)
    assert state.watermark == 0 and state.max_seq == PENDING_LIMIT + 4
    assert state.pending == tuple(range(5, PENDING_LIMIT + 5))
    assert "forgetting the oldest 2" in caplog.text


@pytest.mark.parametrize(
    ("publisher", "node"), [("node-a.0a1b2c3d", "node-a"), ("eu.node.1.ff", "eu.node.1"), ("plain", "plain")]
)
def test_node_of_drops_the_incarnation(publisher: str, node: str) -> None:
    """The node id is the publisher id without its last dotted part."""
    assert node_of(publisher) == node
