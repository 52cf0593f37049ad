"""OpenAI operations that take multipart/form-data (image edits and variations, transcriptions,
translations): the form is decoded once, the model field renamed, and the form encoded again."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import StreamEventInfo
from hydite_dataplane.providers.billed_units import image_usage, transcription_usage
from hydite_dataplane.providers.openai import USAGE_MARKER, base_url, usage_from_openai
from hydite_dataplane.request import InferenceRequest, TokenUsage, UploadedFile
from hydite_dataplane.upstream.transport import UpstreamCall

FormValue = str | UploadedFile


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


def encode_multipart(fields: list[tuple[str, FormValue]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (pure, apart from the random boundary)."""
    boundary = "hydite-" + secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in fields:
        disposition = f'form-data; name="{_quoted(name)}"'
        if isinstance(value, UploadedFile):
            disposition += f'; filename="{_quoted(value.filename)}"'
            head = f"Content-Disposition: {disposition}\r\nContent-Type: {value.content_type}\r\n\r\n"
            payload = value.data
        else:
            head = f"Content-Disposition: {disposition}\r\n\r\n"
            payload = value.encode()
        parts.append(f"--{boundary}\r\n".encode() + head.encode() + payload + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def form_fields(body: Mapping[str, Any]) -> list[tuple[str, FormValue]]:
    """The decoded form back as (name, value) pairs; repeated fields are kept as lists in the body."""
    fields: list[tuple[str, FormValue]] = []
    for name, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, UploadedFile | str):
                fields.append((name, item))
    return fields


def _answer_tokens(request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
    return usage_from_openai(body.get("usage")) if body is not None else TokenUsage()


def _images(request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
    return image_usage(request.body, body, _answer_tokens(request, body))


def _audio(request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
    return transcription_usage(body, request.body.get("file"))


METERS: dict[str, Callable[[InferenceRequest, Mapping[str, Any] | None], TokenUsage]] = {
    "/images/edits": _images,
    "/images/variations": _images,
    "/audio/transcriptions": _audio,
    "/audio/translations": _audio,
}
"""How a call of each path is billed (see billed_units)."""


class OpenAIMultipartOperation:
    """POST {api_base}{path} as multipart/form-data, with the provider's model name."""

    stream_usage_marker = USAGE_MARKER

    def __init__(self, path: str, supported_params: frozenset[str]) -> None:
        self.path = path
        self.supported_params = supported_params
        self._meter = METERS.get(path, _answer_tokens)

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """What the call is billed by: images (edits, variations) or tokens else seconds of audio
        (transcriptions, translations), from the answer and the form."""
        return self._meter(request, body)

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream multipart request."""
        body = dict(request.body)
        body["model"] = target.upstream_model
        payload, content_type = encode_multipart(form_fields(body))
        headers = {"Content-Type": content_type}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        return UpstreamCall("POST", base_url(target) + self.path, headers, payload)

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Token usage when the provider reports it (gpt-4o-transcribe, gpt-image); none for whisper."""
        return usage_from_openai(body.get("usage"))

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Multipart operations are relayed without stream accounting."""
        return StreamEventInfo()

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """Same wire format in and out."""
        return None

    def stream_translator(self, request: InferenceRequest) -> None:
        """Same wire format in and out."""
        return
