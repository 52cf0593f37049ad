"""TokenCache: one fetch per credential however many callers wait, the cached token while it is
valid, a background refresh near its end, and a failed fetch as a gateway error."""

from __future__ import annotations

import asyncio
import time

import pytest

from hydite_common.errors import UpstreamError
from hydite_dataplane.upstream.credentials import Token, TokenCache


class Issuer:
    """Hands out numbered tokens valid for `lifetime` seconds; fails while `failing`."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self.failing = False

    async def fetch(self, key: str) -> Token:
        await asyncio.sleep(0.01)
        if self.failing:
            raise ConnectionError("identity provider unreachable")
        self.issued += 1
        return Token(f"{key}-{self.issued}", time.monotonic() + self.lifetime)


async def test_concurrent_callers_share_one_fetch_and_then_the_cache() -> None:
    """Ten callers at once: one fetch; later callers get the cached token without one."""
    issuer = Issuer(lifetime=3600)
    cache = TokenCache(issuer.fetch)
    tokens = await asyncio.gather(*(cache.get("sa", "dep-1") for _ in range(10)))
    assert {t.value for t in tokens} == {"sa-1"}
    assert (await cache.get("sa", "dep-1")).value == "sa-1"
    assert issuer.issued == 1


async def test_a_token_near_its_end_is_used_while_a_new_one_is_fetched_behind_it() -> None:
    """Inside the refresh margin the old token answers at once; the next call has the new one."""
    issuer = Issuer(lifetime=10)
    cache = TokenCache(issuer.fetch, refresh_margin=60)
    assert (await cache.get("sa", "dep-1")).value == "sa-1"
    assert (await cache.get("sa", "dep-1")).value == "sa-1"  # served, refresh started
    await asyncio.sleep(0.05)
    assert (await cache.get("sa", "dep-1")).value == "sa-2"


async def test_a_failed_fetch_names_the_deployment_and_the_next_call_tries_again() -> None:
    """No token and no identity provider: a 502 naming the deployment; then it recovers."""
    issuer = Issuer(lifetime=3600)
    issuer.failing = True
    cache = TokenCache(issuer.fetch)
    with pytest.raises(UpstreamError) as raised:
        await cache.get("sa", "dep-7")
    assert "dep-7" in raised.value.message
    assert raised.value.code == "upstream_credentials_unavailable"
    issuer.failing = False
    assert (await cache.get("sa", "dep-7")).value == "sa-1"
