"""Cross-service fixtures: the fake OpenAI, Anthropic and Gemini upstreams every end-to-end test can
point deployments at (the stack itself comes from the root conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI, FakeServerThread
from tests.harness import FAKE_UPSTREAM_KEY


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    """A fake OpenAI upstream and its base URL (with /v1)."""
    fake = FakeOpenAI(api_key=FAKE_UPSTREAM_KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, f"{base}/v1"
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    """A fake Anthropic upstream and its base URL (without /v1, as the Anthropic SDK takes it)."""
    fake = FakeAnthropic(api_key=FAKE_UPSTREAM_KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[tuple[FakeGemini, str]]:
    """A fake Gemini upstream and its base URL (without the API version, as the google-genai SDK takes it)."""
    fake = FakeGemini(api_key=FAKE_UPSTREAM_KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()
