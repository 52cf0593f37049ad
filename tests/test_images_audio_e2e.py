"""Image generation and text-to-speech through the data plane with the official SDK."""

from __future__ import annotations

import base64
import secrets
from typing import Any, cast

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FAKE_PNG, FakeOpenAI, fake_speech
from tests.harness import FAKE_UPSTREAM_KEY, wait_until
from tests.openapi_spec import Check, spec_checker


@pytest.fixture(scope="module")
def media(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """An image model, a token-billed image model and a speech model, and a key for them."""
    _, base = fake_openai
    suffix = secrets.token_hex(3)
    names = {"dalle": f"dalle-{suffix}", "gpt_image": f"gpt-image-{suffix}", "tts": f"tts-{suffix}"}
    upstream = {"dalle": "dall-e-3", "gpt_image": "gpt-image-1", "tts": "tts-1"}
    for kind, name in names.items():
        params: dict[str, Any] = {
            "model": f"openai/{upstream[kind]}",
            "api_base": base,
            "api_key": FAKE_UPSTREAM_KEY,
        }
        if kind == "gpt_image":
            params |= {"input_cost_per_token": 0.000005, "output_cost_per_token": 0.00004}
        assert (
            admin.post("/model/new", json={"model_name": name, "litellm_params": params}).status_code == 200
        )
    key = admin.post("/key/generate", json={"models": list(names.values())}).json()["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    wait_until(lambda: len(client.models.list().data) == 3, timeout=2.0)
    return {**names, "key": key}


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)


def test_image_generation_url_and_b64(stack: Stack, media: dict[str, str], check: Check) -> None:
    """Images come back as URLs or base64 PNGs, matching the spec."""
    client = _client(stack, media["key"])
    urls = client.images.generate(model=media["dalle"], prompt="a cat", n=2)
    check(urls.model_dump(exclude_unset=True), "ImagesResponse")
    assert urls.data is not None and len(urls.data) == 2 and all(d.url for d in urls.data)
    b64 = client.images.generate(model=media["dalle"], prompt="a cat", response_format="b64_json")
    assert b64.data and base64.b64decode(b64.data[0].b64_json or "") == FAKE_PNG


def test_token_billed_images_land_in_spend_logs(
    stack: Stack, media: dict[str, str], admin: httpx.Client
) -> None:
    """gpt-image usage (input/output tokens) is billed at the deployment's prices."""
    raw = _client(stack, media["key"]).images.with_raw_response.generate(
        model=media["gpt_image"], prompt="a dog"
    )
    request_id = raw.headers["x-request-id"]

    def logged() -> dict[str, Any] | None:
        rows = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows[0] if rows else None

    row = wait_until(logged, timeout=10.0, interval=0.05)
    assert row["call_type"] == "images" and row["prompt_tokens"] == 12 and row["completion_tokens"] == 1056
    assert row["spend"] == pytest.approx(12 * 0.000005 + 1056 * 0.00004)


def test_speech_streams_audio_bytes(stack: Stack, media: dict[str, str]) -> None:
    """Text-to-speech relays the provider's audio bytes and content type, chunk by chunk."""
    client = _client(stack, media["key"])
    with client.audio.speech.with_streaming_response.create(
        model=media["tts"], voice="alloy", input="hello from hydite"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        body = b"".join(response.iter_bytes())
    assert body == b"".join(fake_speech("hello from hydite"))
    missing = httpx.post(
        stack.base_url + "/v1/audio/speech",
        headers={"Authorization": f"Bearer {media['key']}"},
        json={"model": media["tts"], "input": "x"},
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "voice"


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against the spec's component schemas."""
    return spec_checker()


@pytest.fixture(scope="module")
def uploads(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """Whisper, gpt-4o-transcribe and dall-e-2 deployments (multipart operations) and a key."""
    _, base = fake_openai
    suffix = secrets.token_hex(3)
    names = {"whisper": f"whisper-{suffix}", "gpt4o": f"transcribe-{suffix}", "dalle2": f"dalle2-{suffix}"}
    upstream = {"whisper": "whisper-1", "gpt4o": "gpt-4o-transcribe", "dalle2": "dall-e-2"}
    for kind, name in names.items():
        params = {"model": f"openai/{upstream[kind]}", "api_base": base, "api_key": FAKE_UPSTREAM_KEY}
        assert (
            admin.post("/model/new", json={"model_name": name, "litellm_params": params}).status_code == 200
        )
    key = admin.post("/key/generate", json={"models": list(names.values())}).json()["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    wait_until(lambda: len(client.models.list().data) == 3, timeout=2.0)
    return {**names, "key": key}


AUDIO = b"RIFF" + secrets.token_bytes(2048)


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_transcriptions_in_every_format(
    stack: Stack, uploads: dict[str, str], fake_openai: tuple[FakeOpenAI, str], fmt: str
) -> None:
    """The upload reaches the provider under its model name; every response format comes back as sent."""
    fake, _ = fake_openai
    client = _client(stack, uploads["key"])
    result: Any = client.audio.transcriptions.create(
        model=uploads["whisper"], file=("clip.wav", AUDIO, "audio/wav"), response_format=cast(Any, fmt)
    )
    text = result if isinstance(result, str) else result.text
    assert f"transcript of clip.wav ({len(AUDIO)} bytes)" in text
    sent = fake.requests[-1]
    assert sent["model"] == "whisper-1" and sent["file"] == ("clip.wav", len(AUDIO))


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
def test_translations_and_token_billed_transcriptions(
    stack: Stack, uploads: dict[str, str], admin: httpx.Client
) -> None:
    """Translations work; gpt-4o-transcribe's token usage reaches spend logs."""
    client = _client(stack, uploads["key"])
    translated = client.audio.translations.create(
        model=uploads["whisper"], file=("fr.wav", AUDIO, "audio/wav")
    )
    assert "fr.wav" in translated.text
    raw = client.audio.transcriptions.with_raw_response.create(
        model=uploads["gpt4o"], file=("clip.wav", AUDIO, "audio/wav")
    )
    request_id = raw.headers["x-request-id"]
    row = wait_until(
        lambda: admin.get("/spend/logs", params={"request_id": request_id}).json(), timeout=10.0
    )[0]
    assert (
        row["call_type"] == "transcriptions" and row["prompt_tokens"] == 20 and row["completion_tokens"] == 8
    )


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks variations deprecated
def test_image_edits_and_variations(
    stack: Stack, uploads: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Image edits and variations upload their images as multipart and return URLs."""
    fake, _ = fake_openai
    client = _client(stack, uploads["key"])
    edited = client.images.edit(
        model=uploads["dalle2"], image=("cat.png", FAKE_PNG, "image/png"), prompt="add a hat"
    )
    assert edited.data and edited.data[0].url
    assert (
        fake.requests[-1]["image"] == ("cat.png", len(FAKE_PNG))
        and fake.requests[-1]["prompt"] == "add a hat"
    )
    varied = client.images.create_variation(
        model=uploads["dalle2"], image=("cat.png", FAKE_PNG, "image/png"), n=2
    )
    assert varied.data is not None and len(varied.data) == 2


def test_multipart_routes_refuse_json_and_missing_files(stack: Stack, uploads: dict[str, str]) -> None:
    """A JSON body on a multipart route, or a form without its file, is a clear 400."""
    headers = {"Authorization": f"Bearer {uploads['key']}"}
    as_json = httpx.post(
        stack.base_url + "/v1/audio/transcriptions", headers=headers, json={"model": uploads["whisper"]}
    )
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "invalid_content_type"
    no_file = httpx.post(
        stack.base_url + "/audio/transcriptions", headers=headers, files={"model": (None, uploads["whisper"])}
    )
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
