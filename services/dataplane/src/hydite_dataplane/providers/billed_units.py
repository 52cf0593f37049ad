"""What speech, image, transcription and rerank calls are billed by besides tokens (pure): the
characters spoken, the images made (by size and quality), the seconds of audio heard, the search
units ranked. Each comes from the answer when it tells, else from the request; what neither tells
is named `unmetered`, never guessed."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from typing import Any

from hydite_dataplane.request import TokenUsage, UploadedFile

DEFAULT_IMAGE_SIZE = "1024x1024"
"""OpenAI's size when a request names none."""
UNSTATED = ("", "auto")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def speech_usage(body: Mapping[str, Any]) -> TokenUsage:
    """A speech request is billed by the characters of its input."""
    return TokenUsage(input_characters=len(_text(body.get("input"))))


def image_usage(
    request: Mapping[str, Any], answer: Mapping[str, Any] | None, tokens: TokenUsage
) -> TokenUsage:
    """An image call: the tokens the answer reports, and its images with the size and quality the
    answer states (gpt-image does), else the request's ("auto" or unstated: "", the flat price)."""
    answer = answer or {}
    data = answer.get("data")
    images = len(data) if isinstance(data, list) else 0
    size = _text(answer.get("size")) or _text(request.get("size"))
    quality = _text(answer.get("quality")) or _text(request.get("quality"))
    return dataclasses.replace(
        tokens,
        images=images,
        image_size=DEFAULT_IMAGE_SIZE if not size else ("" if size in UNSTATED else size),
        image_quality="" if quality in UNSTATED else quality,
    )


def wav_seconds(data: bytes) -> float | None:
    """The length of a RIFF/WAVE recording from its header (data bytes over byte rate), None for
    anything else: other formats would need decoding to know."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        if chunk_id == b"fmt " and offset + 20 <= len(data):
            (byte_rate,) = struct.unpack_from("<I", data, offset + 16)
        elif chunk_id == b"data":
            present = min(size, len(data) - offset - 8)
            return present / byte_rate if byte_rate else None
        offset += 8 + size + (size & 1)
    return None


def transcription_usage(answer: Mapping[str, Any] | None, upload: Any) -> TokenUsage:
    """A transcription or translation: tokens when the answer reports them (gpt-4o-transcribe),
    else the seconds it reports (`usage.seconds`, or verbose_json's `duration`), else the seconds
    of an uploaded WAV recording; else the seconds are unmetered."""
    answer = answer or {}
    usage = answer.get("usage")
    if isinstance(usage, dict) and usage.get("type") != "duration":
        details = usage.get("input_token_details")
        audio = _count(details.get("audio_tokens")) if isinstance(details, dict) else 0
        prompt = _count(usage.get("input_tokens"))
        if prompt or _count(usage.get("output_tokens")):
            return TokenUsage(
                prompt_tokens=prompt,
                completion_tokens=_count(usage.get("output_tokens")),
                audio_prompt_tokens=audio,
            )
    for seconds in (
        usage.get("seconds") if isinstance(usage, dict) else None,
        answer.get("duration"),
    ):
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            return TokenUsage(audio_seconds=float(seconds))
    heard = wav_seconds(upload.data) if isinstance(upload, UploadedFile) else None
    if heard is not None:
        return TokenUsage(audio_seconds=heard)
    return TokenUsage(unmetered="audio_seconds")


def search_units(answer: Mapping[str, Any] | None) -> int:
    """Cohere's billed search units of a rerank answer; else one, for the request's one query (a
    search unit is a query over up to 100 documents, as Cohere bills)."""
    meta = (answer or {}).get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    units = billed.get("search_units") if isinstance(billed, dict) else None
    return _count(units) or 1
