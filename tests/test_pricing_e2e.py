"""Requests are billed at their deployment's resolved price, end to end: /spend/logs rows carry the
cost, currency and cost_source of a list-priced model, a deployment's own CNY prices and an
unknown model (cost 0, source unknown, counted on /metrics); speech, images, rerank and
transcriptions are billed by their units; /model/info shows what was resolved."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI, FakeServerThread
from tests.fakes.rerank_server import FakeRerank
from tests.harness import FAKE_UPSTREAM_KEY, deploy_fake, ok_get, ok_post, spend_row, unique

# genai-prices' list prices of the models below (USD per token, per character, per hour).
GPT_4O_MINI = (0.15e-6, 0.6e-6)
TTS_1_PER_CHARACTER = 15e-6
WHISPER_1_PER_SECOND = 0.36 / 3600
FAKE_PROMPT, FAKE_COMPLETION = 11, 7  # the fake upstream's chat usage
RERANK_KEY = "rerank-upstream-secret"


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A silent 8-bit mono WAV recording of this length."""
    frames = int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", frames)
    return b"RIFF" + struct.pack("<I", len(body) + frames) + body + b"\x80" * frames


@pytest.fixture(scope="module")
def priced(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> Iterator[dict[str, Any]]:
    """Deployments on the fake upstreams: list-priced, own-priced (CNY), unpriced, speech, images,
    transcription and rerank; and a key for all of them."""
    _, base = fake_openai
    rerank = FakeRerank(api_key=RERANK_KEY)
    server = FakeServerThread(rerank.app())
    rerank_base = server.start()
    names = {
        kind: unique(f"priced-{kind}") for kind in ("listed", "own", "unknown", "tts", "image", "whisper")
    }
    ids = {
        "listed": deploy_fake(admin, base, names["listed"], "gpt-4o-mini"),
        "own": deploy_fake(
            admin,
            base,
            names["own"],
            "gpt-4o-mini",
            input_cost_per_token=2e-5,
            output_cost_per_token=4e-5,
            cache_read_input_token_cost=1e-5,
            currency="CNY",
        ),
        "unknown": deploy_fake(admin, base, names["unknown"], "acme-unreleased-7b"),
        "tts": deploy_fake(admin, base, names["tts"], "tts-1"),
        "image": deploy_fake(admin, base, names["image"], "dall-e-3", info={"mode": "image_generation"},
                             output_cost_per_image=0.04),
        "whisper": deploy_fake(admin, base, names["whisper"], "whisper-1"),
    }  # fmt: skip
    names["rerank"] = unique("priced-rerank")
    created = admin.post(
        "/model/new",
        json={
            "model_name": names["rerank"],
            "litellm_params": {"model": "cohere/rerank-v3.5", "api_base": rerank_base, "api_key": RERANK_KEY},
        },
    )
    assert created.status_code == 200, created.text
    key = admin.post("/key/generate", json={"models": list(names.values())}).json()["key"]
    yield {"names": names, "ids": ids, "key": key}
    server.stop()


def _post(stack: Stack, key: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.post(stack.base_url + path, headers={"Authorization": f"Bearer {key}"}, **kwargs)
    assert response.status_code == 200, response.text
    return response


def _chat(stack: Stack, key: str, model: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return _post(stack, key, "/v1/chat/completions", json=body).headers["x-request-id"]


def test_a_list_priced_model_is_billed_at_genai_prices(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """openai/gpt-4o-mini on the fake upstream costs what genai-prices lists for it."""
    row = spend_row(admin, _chat(stack, priced["key"], priced["names"]["listed"]))
    assert (row["currency"], row["cost_source"]) == ("USD", "genai-prices")
    assert row["spend"] == pytest.approx(FAKE_PROMPT * GPT_4O_MINI[0] + FAKE_COMPLETION * GPT_4O_MINI[1])


def test_a_deployment_s_own_prices_win_in_their_currency(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """litellm_params prices (here in CNY) replace the list price."""
    row = spend_row(admin, _chat(stack, priced["key"], priced["names"]["own"]))
    assert (row["currency"], row["cost_source"]) == ("CNY", "deployment")
    assert row["spend"] == pytest.approx(FAKE_PROMPT * 2e-5 + FAKE_COMPLETION * 4e-5)


def test_an_unknown_model_costs_nothing_and_says_so(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """No price anywhere: spend 0, cost_source unknown, and hydite_unpriced_requests_total counts it."""
    model = priced["names"]["unknown"]
    row = spend_row(admin, _chat(stack, priced["key"], model))
    assert (row["spend"], row["cost_source"], row["prompt_tokens"]) == (0.0, "unknown", FAKE_PROMPT)
    metrics = httpx.get(stack.base_url + "/metrics").text.splitlines()
    counted = f'hydite_unpriced_requests_total{{model_group="{model}",provider="openai"}} '
    assert any(line.startswith(counted) and float(line.rsplit(" ", 1)[1]) >= 1 for line in metrics)


def test_model_info_shows_resolved_prices_limits_and_source(
    admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """/model/info and /v2/model/info show the price each deployment is billed at and its source."""
    listed = ok_get(admin, "/model/info", litellm_model_id=priced["ids"]["listed"])["data"][0]["model_info"]
    assert (listed["input_cost_per_token"], listed["output_cost_per_token"]) == pytest.approx(GPT_4O_MINI)
    assert listed["cache_read_input_token_cost"] == pytest.approx(0.075e-6)
    assert (listed["max_input_tokens"], listed["max_output_tokens"]) == (128000, 16384)
    assert (listed["hydite_price_source"], listed["currency"], listed["litellm_provider"]) == (
        "genai-prices", "USD", "openai",
    )  # fmt: skip
    page = ok_get(admin, "/v2/model/info", modelId=priced["ids"]["own"])["data"][0]["model_info"]
    assert (page["input_cost_per_token"], page["cache_read_input_token_cost"]) == (2e-5, 1e-5)
    assert (page["hydite_price_source"], page["currency"]) == ("deployment", "CNY")
    unknown = ok_get(admin, "/model/info", litellm_model_id=priced["ids"]["unknown"])["data"][0]
    assert unknown["model_info"]["hydite_price_source"] == "unknown"


def test_speech_is_billed_by_input_characters(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """tts-1 costs its price per character of the input."""
    text = "hello from the pricing test"
    body = {"model": priced["names"]["tts"], "input": text, "voice": "alloy"}
    row = spend_row(admin, _post(stack, priced["key"], "/v1/audio/speech", json=body).headers["x-request-id"])
    assert row["metadata"]["input_characters"] == len(text)
    assert row["spend"] == pytest.approx(len(text) * TTS_1_PER_CHARACTER)


def test_speech_of_a_model_priced_per_token_says_it_went_unmetered(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """gpt-4o-mini-tts is listed per token, and a binary speech answer reports none: cost 0, and the
    row says the characters were not metered rather than passing as free."""
    name = unique("priced-tts-tokens")
    deploy_fake(admin, fake_openai[1], name, "gpt-4o-mini-tts")
    key = ok_post(admin, "/key/generate", {"models": [name]})["key"]
    body = {"model": name, "input": "hello", "voice": "alloy"}
    row = spend_row(admin, _post(stack, key, "/v1/audio/speech", json=body).headers["x-request-id"])
    assert (row["spend"], row["metadata"]["unmetered"]) == (0, "input_characters")


def test_images_are_billed_per_image(stack: Stack, admin: httpx.Client, priced: dict[str, Any]) -> None:
    """An image model that reports no tokens is billed per image of the answer."""
    body = {"model": priced["names"]["image"], "prompt": "a cat", "n": 3}
    row = spend_row(
        admin, _post(stack, priced["key"], "/v1/images/generations", json=body).headers["x-request-id"]
    )
    assert row["metadata"]["images"] == 3 and row["cost_source"] == "deployment"
    assert row["spend"] == pytest.approx(3 * 0.04)


def test_rerank_is_billed_by_search_units(stack: Stack, admin: httpx.Client, priced: dict[str, Any]) -> None:
    """Cohere's billed search units at LiteLLM's price per query."""
    body = {"model": priced["names"]["rerank"], "query": "cat", "documents": ["a cat", "a dog"]}
    row = spend_row(admin, _post(stack, priced["key"], "/v1/rerank", json=body).headers["x-request-id"])
    assert (row["metadata"]["search_units"], row["cost_source"]) == (1, "litellm")
    assert row["spend"] == pytest.approx(0.002)


@pytest.mark.parametrize(("fmt", "seconds"), [("verbose_json", 1.0), ("text", 2.5)])
def test_transcriptions_are_billed_by_seconds(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any], fmt: str, seconds: float
) -> None:
    """whisper-1 is billed per second: the answer's duration (verbose_json), else the WAV's length."""
    response = _post(
        stack,
        priced["key"],
        "/v1/audio/transcriptions",
        data={"model": priced["names"]["whisper"], "response_format": fmt},
        files={"file": ("speech.wav", wav(2.5), "audio/wav")},
    )
    row = spend_row(admin, response.headers["x-request-id"])
    assert row["metadata"]["audio_seconds"] == pytest.approx(seconds)
    assert row["spend"] == pytest.approx(seconds * WHISPER_1_PER_SECOND)


def test_an_mp3_transcript_as_text_leaves_its_seconds_unmetered(
    stack: Stack, admin: httpx.Client, priced: dict[str, Any]
) -> None:
    """Neither the text answer nor an MP3 upload tells its length: 0 seconds, named unmetered."""
    response = _post(
        stack,
        priced["key"],
        "/v1/audio/transcriptions",
        data={"model": priced["names"]["whisper"], "response_format": "text"},
        files={"file": ("speech.mp3", b"ID3" + bytes(64), "audio/mpeg")},
    )
    row = spend_row(admin, response.headers["x-request-id"])
    assert (row["metadata"]["unmetered"], row["spend"]) == ("audio_seconds", 0.0)


def test_price_settings_never_reach_the_provider(
    fake_openai: tuple[FakeOpenAI, str], stack: Stack, priced: dict[str, Any]
) -> None:
    """A deployment's price settings price it; the upstream body never carries them."""
    fake, _ = fake_openai
    _chat(stack, priced["key"], priced["names"]["own"])
    sent = fake.requests[-1]
    assert not {"cache_read_input_token_cost", "currency"} & set(sent)


def test_bad_price_settings_are_refused(admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> None:
    """A price that is not a number of at least 0, or a currency that is no ISO code, is refused
    (the admin API's invalid_value answer) and nothing is stored."""
    _, base = fake_openai
    for params in ({"cache_read_input_token_cost": -1}, {"currency": "yuan"}, {"model": "x"}):
        litellm_params = {"model": "openai/gpt-4o-mini", "api_base": base, "api_key": FAKE_UPSTREAM_KEY}
        answer = admin.post(
            "/model/new",
            json={"model_name": unique("bad-price"), "litellm_params": litellm_params | params},
        )
        if params == {"model": "x"}:
            assert answer.status_code == 200  # the control case: the same body without a bad price
            continue
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["type"] == "invalid_request_error"
