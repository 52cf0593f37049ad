"""Sliding one-minute windows: one entity's request and token counts, and its requests in flight.

The count of the last 60 s is the current minute's plus the previous minute's, weighted by how
much of it still overlaps.
"""

from __future__ import annotations

import math

WINDOW_SECONDS = 60.0


class RateWindow:
    """One entity's counters: this minute, the minute before, and requests in flight."""

    __slots__ = (
        "in_flight",
        "previous_requests",
        "previous_tokens",
        "requests",
        "reserved_tokens",
        "start",
        "tokens",
    )

    def __init__(self, now: float) -> None:
        self.start = now
        self.requests = 0
        self.tokens = 0
        self.previous_requests = 0
        self.previous_tokens = 0
        self.in_flight = 0
        self.reserved_tokens = 0
        """Tokens reserved by requests in flight, replaced by their real count when they end."""

    def roll(self, now: float) -> float:
        """Advance to the window holding now; the share of the previous minute still counted."""
        elapsed = now - self.start
        if elapsed >= WINDOW_SECONDS:
            if elapsed >= 2 * WINDOW_SECONDS:
                self.previous_requests = self.previous_tokens = 0
            else:
                self.previous_requests, self.previous_tokens = self.requests, self.tokens
            self.requests = self.tokens = 0
            self.start = now - elapsed % WINDOW_SECONDS
            elapsed = now - self.start
        return 1.0 - elapsed / WINDOW_SECONDS

    def requests_in_window(self, now: float) -> float:
        """Requests counted in the last 60 s."""
        carried = self.roll(now)
        return self.previous_requests * carried + self.requests

    def tokens_in_window(self, now: float) -> float:
        """Tokens counted in the last 60 s (those of requests in flight aside)."""
        carried = self.roll(now)
        return self.previous_tokens * carried + self.tokens

    def seconds_until_below(self, limit: float, current: int, previous: int, carried: float) -> int:
        """Whole seconds until the sliding count drops below limit (1 to 60)."""
        elapsed = WINDOW_SECONDS * (1.0 - carried)
        if current >= limit or not previous:
            wait = WINDOW_SECONDS - elapsed
        else:
            # previous * (1 - (elapsed + wait) / W) + current < limit
            wait = WINDOW_SECONDS * (1.0 - (limit - current) / previous) - elapsed
        return min(60, max(1, math.ceil(wait)))
