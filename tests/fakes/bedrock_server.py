"""A fake Amazon Bedrock Runtime speaking the Converse API's wire format, failure modes picked by model name.

It runs on its own event loop in a background thread (``FakeServerThread``).

Endpoints: POST /model/{modelId}/converse (JSON) and POST /model/{modelId}/converse-stream
(``application/vnd.amazon.eventstream``: binary event-stream messages, each with its prelude and
message CRCs, ``:message-type: event`` and an ``:event-type`` of messageStart, contentBlockStart,
contentBlockDelta, contentBlockStop, messageStop and metadata; the body is written in pieces that
cut messages apart, as a network would).

Every call must carry a SigV4 signature (service ``bedrock``) made with ``ACCESS_KEY_ID`` and
``SECRET_ACCESS_KEY``: it is verified with botocore's signer over the request as received (method,
raw path, signed headers, body). An unknown key id is a 403 ``UnrecognizedClientException``, a
signature that does not match a 403 ``InvalidSignatureException``, as AWS answers them.

What an answer holds follows the request:

- text: ``ANSWER_WORDS`` joined, ``stopReason: end_turn``; cut to ``inferenceConfig.maxTokens`` words
  (one token a word), ``stopReason: max_tokens``, when that is fewer.
- ``toolConfig.tools`` given and the last user turn holds no toolResult: one ``toolUse`` block for the
  first tool (input filled from its schema's properties by type), ``stopReason: tool_use``.
- the last user turn holds a toolResult: the text ``RESULT_PREFIX`` followed by the result's text.
- usage: ``inputTokens`` = ``count_tokens`` of the system and message texts, ``outputTokens`` = words
  (plus one for a tool call).

The model id picks a failure mode: ``fail-throttle`` 429 ``ThrottlingException``; ``fail-too-long``
400 ``ValidationException`` "Input is too long for requested model."; ``stream-throttle`` streams one
text delta and then a ``throttlingException`` exception message. Every call is recorded in ``calls``
as (raw path, model id); ``requests`` and ``headers`` hold the body and headers of every
authenticated call.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

Json = dict[str, Any]

ACCESS_KEY_ID = "AKIAFAKEBEDROCK00001"
SECRET_ACCESS_KEY = "fake/bedrock+secret/0123456789abcdefghij"
REGION = "us-east-1"
ANSWER_WORDS = ["Hello", " from", " Bedrock", "!"]
RESULT_PREFIX = "The tool said: "
_ERROR_HEADER_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def count_tokens(value: Any) -> int:
    """The fake's token count: words of every string in value."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(
            count_tokens(v) for k, v in value.items() if k in ("text", "content", "system", "messages")
        )
    if isinstance(value, list):
        return sum(count_tokens(v) for v in value)
    return 0


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(encoded_name))
        + encoded_name
        + b"\x07"
        + struct.pack(">H", len(encoded_value))
        + encoded_value
    )


def event_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and headers length), prelude CRC, string
    headers, payload, message CRC."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    head = prelude + struct.pack(">I", binascii.crc32(prelude))
    body = head + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body))


def event(kind: str, payload: Json) -> bytes:
    """A ConverseStream event message."""
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, orjson.dumps(payload))


def exception(kind: str, message: str) -> bytes:
    """A ConverseStream exception message."""
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, orjson.dumps({"message": message}))


def tool_input(spec: Mapping[str, Any]) -> Json:
    """A value of its type for each property of a tool's input schema."""
    schema = spec.get("inputSchema", {}).get("json", {})
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    samples = {"string": "Paris", "integer": 3, "number": 1.5, "boolean": True}
    return {
        name: samples.get(str(p.get("type")), "x") for name, p in properties.items() if isinstance(p, dict)
    }


def aws_error(status: int, kind: str, message: str) -> web.Response:
    """An AWS JSON error: the message in the body, the type in x-amzn-ErrorType."""
    return web.Response(
        status=status,
        body=orjson.dumps({"message": message}),
        content_type="application/json",
        headers={"x-amzn-ErrorType": kind + _ERROR_HEADER_SUFFIX, "x-amzn-RequestId": "fake-request-id"},
    )


def signature_error(request: web.Request, body: bytes) -> web.Response | None:
    """None when the request carries a valid SigV4 signature of the test credentials, else AWS's 403."""
    authorization = request.headers.get("Authorization", "")
    fields = dict(
        part.strip().split("=", 1)
        for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
        if "=" in part
    )
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or scope[0] != ACCESS_KEY_ID:
        return aws_error(
            403, "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    signed = fields.get("SignedHeaders", "").split(";")
    headers = {name: request.headers.get(name, "") for name in signed}
    rebuilt = AWSRequest(
        method=request.method, url=f"http://{request.host}{request.raw_path}", data=body, headers=headers
    )
    rebuilt.context["timestamp"] = request.headers.get("X-Amz-Date", "")
    signer = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), scope[3], scope[2])
    expected = signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
    if scope[3] != "bedrock" or expected != fields.get("Signature"):
        return aws_error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


class FakeBedrock:
    """The fake Bedrock Runtime's state: what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.requests: list[Json] = []
        self.headers: list[dict[str, str]] = []

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """POST /model/{modelId}/{action}."""
        model, action = unquote(request.match_info["model"]), request.match_info["action"]
        raw = await request.read()
        self.calls.append((request.raw_path, model))
        refused = signature_error(request, raw)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return aws_error(
                400,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
            )
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if model == "fail-throttle":
            return aws_error(
                429, "ThrottlingException", "Too many requests, please wait before trying again."
            )
        if model == "fail-too-long":
            return aws_error(400, "ValidationException", "Input is too long for requested model.")
        if action == "converse":
            return web.json_response(self._answer(body))
        if action == "converse-stream":
            return await self._stream(request, model, body)
        return aws_error(404, "UnknownOperationException", f"Unknown operation {action}")

    def _tool(self, body: Mapping[str, Any]) -> Json | None:
        last = body["messages"][-1].get("content", [])
        if any("toolResult" in block for block in last):
            return None
        tools = body.get("toolConfig", {}).get("tools", [])
        spec = tools[0].get("toolSpec") if tools else None
        return (
            {"toolUseId": "tooluse_fake0001", "name": spec["name"], "input": tool_input(spec)}
            if spec
            else None
        )

    def _words(self, body: Mapping[str, Any]) -> tuple[list[str], str]:
        last = body["messages"][-1].get("content", [])
        results = [block["toolResult"] for block in last if "toolResult" in block]
        if results:
            text = "".join(c.get("text", "") for c in results[0].get("content", []))
            return [RESULT_PREFIX, text], "end_turn"
        limit = body.get("inferenceConfig", {}).get("maxTokens")
        if isinstance(limit, int) and limit < len(ANSWER_WORDS):
            return ANSWER_WORDS[:limit], "max_tokens"
        return ANSWER_WORDS, "end_turn"

    def _usage(self, body: Mapping[str, Any], output: int) -> Json:
        prompt = count_tokens([body.get("system"), body.get("messages")])
        return {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output}

    def _answer(self, body: Mapping[str, Any]) -> Json:
        tool = self._tool(body)
        if tool is not None:
            content: list[Json] = [{"toolUse": tool}]
            reason, output = "tool_use", 1
        else:
            words, reason = self._words(body)
            content, output = [{"text": "".join(words)}], len(words)
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": reason,
            "usage": self._usage(body, output),
            "metrics": {"latencyMs": 12},
        }

    async def _stream(self, request: web.Request, model: str, body: Mapping[str, Any]) -> web.StreamResponse:
        messages = [event("messageStart", {"role": "assistant"})]
        tool = self._tool(body)
        if model == "stream-throttle":
            messages.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}))
            messages.append(
                exception("throttlingException", "Too many tokens, please wait before trying again.")
            )
            output, reason = 0, ""
        elif tool is not None:
            start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
            arguments = orjson.dumps(tool["input"]).decode()
            half = len(arguments) // 2
            messages.append(event("contentBlockStart", {"contentBlockIndex": 0, "start": start}))
            for piece in (arguments[:half], arguments[half:]):
                messages.append(
                    event(
                        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}
                    )
                )
            messages.append(event("contentBlockStop", {"contentBlockIndex": 0}))
            output, reason = 1, "tool_use"
        else:
            words, reason = self._words(body)
            for word in words:
                messages.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word}}))
            messages.append(event("contentBlockStop", {"contentBlockIndex": 0}))
            output = len(words)
        if reason:
            messages.append(event("messageStop", {"stopReason": reason}))
            metadata = {"usage": self._usage(body, output), "metrics": {"latencyMs": 20}}
            messages.append(event("metadata", metadata))
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "fake-stream"},
        )
        await response.prepare(request)
        data = b"".join(messages)
        # Pieces that cut messages (and their preludes) apart.
        step = max(7, len(data) // 5)
        for offset in range(0, len(data), step):
            await response.write(data[offset : offset + step])
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        """The aiohttp app."""
        app = web.Application()
        app.router.add_post("/model/{model}/{action}", self.dispatch)
        return app
