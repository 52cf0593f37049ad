"""Amazon Bedrock Runtime: chat completions over Converse and ConverseStream (Claude, Llama,
Mistral, Nova, DeepSeek and every other model Converse serves, cross-region inference profiles
being model ids like any other), the Responses and Messages APIs over chat.

Calls are signed with AWS Signature Version 4 by botocore's signer (`BedrockSigner`), with the
deployment's own keys (LiteLLM's `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
`aws_region_name`) or else the standard AWS credential chain (environment, shared files, web
identity on Kubernetes, container and instance roles), resolved off the event loop and kept fresh
by a TokenCache. Translation lives in bedrock_request, bedrock_response and bedrock_stream.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hydite_common.errors import UpstreamError
from hydite_common.openai_params import BEDROCK_CHAT_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import PLAIN_EVENT, OperationAdapter, StreamEventInfo, StreamTranslator
from hydite_dataplane.providers.bedrock_request import converse_request, converse_url
from hydite_dataplane.providers.bedrock_response import chat_completion, token_usage
from hydite_dataplane.providers.bedrock_stream import BedrockChatStream, event_name, event_stream_batches
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.credentials import Token, TokenCache
from hydite_dataplane.upstream.sse import data_of
from hydite_dataplane.upstream.transport import UpstreamCall

SIGNING_SERVICE = "bedrock"
USAGE_MARKER = b"event: metadata"
REGION_PLACEHOLDER = "{region}"
DEFAULT_ENDPOINT = "https://bedrock-runtime.{region}.amazonaws.com"
CHAIN_CREDENTIALS_SECONDS = 3600.0
"""How long credentials the chain gave without an expiry (environment keys) are used before the
chain is asked again."""


def _merged_body(request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
    return {**target.extra_params, **request.body} if target.extra_params else request.body


def _served_model(request: InferenceRequest) -> str:
    return model_id(request.deployment.upstream_model) if request.deployment is not None else request.model


ROUTE_PREFIXES = ("converse/", "invoke/")
"""LiteLLM's route markers in a model string (`bedrock/converse/<model id>`): this adapter calls
Converse for either, so existing configs load unchanged."""


def model_id(upstream_model: str) -> str:
    """The Bedrock model id (or inference profile id, or ARN) a deployment's model names."""
    for prefix in ROUTE_PREFIXES:
        if upstream_model.startswith(prefix):
            return upstream_model[len(prefix) :]
    return upstream_model


def _param(target: DeploymentTarget, name: str) -> str:
    value = target.extra_params.get(name)
    return value if isinstance(value, str) else ""


class BedrockChat:
    """Chat completions on /model/{modelId}/converse and /model/{modelId}/converse-stream."""

    supported_params = BEDROCK_CHAT_PARAMS
    stream_usage_marker = USAGE_MARKER

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The unsigned upstream request; without api_base or aws_region_name its URL keeps a
        `{region}` for the signer to fill from the credential chain."""
        model = model_id(target.upstream_model)
        body = converse_request(_merged_body(request, target), model)
        region = _param(target, "aws_region_name")
        base = target.api_base or DEFAULT_ENDPOINT.replace(REGION_PLACEHOLDER, region or REGION_PLACEHOLDER)
        headers = {"Content-Type": "application/json"}
        headers["Accept"] = "application/vnd.amazon.eventstream" if request.stream else "application/json"
        url = converse_url(base, model, request.stream)
        return UpstreamCall("POST", url, headers, orjson.dumps(body))

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Usage of a Converse answer."""
        return token_usage(body.get("usage"))

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The chat.completion."""
        return chat_completion(
            body, model=_served_model(request), created=int(time.time()), completion_id=_completion_id()
        )

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """ConverseStream events as chat completion chunks."""
        return BedrockChatStream(
            model=_served_model(request),
            created=int(time.time()),
            completion_id=_completion_id(),
            wants_usage=request.client_wants_stream_usage,
        )

    def stream_batches(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
        """ConverseStream answers in the AWS event-stream framing, not SSE."""
        return event_stream_batches(chunks)

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """The metadata event closes the stream with its usage."""
        if event_name(event) != b"metadata":
            return PLAIN_EVENT
        try:
            payload = orjson.loads(data_of(event))
        except orjson.JSONDecodeError:
            return PLAIN_EVENT
        usage = payload.get("usage") if isinstance(payload, dict) else None
        return StreamEventInfo(usage=token_usage(usage)) if isinstance(usage, dict) else PLAIN_EVENT


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """A set of AWS keys and the region they sign for ("" when nothing named one)."""

    access_key: str
    secret_key: str
    token: str | None
    region: str


def deployment_keys(target: DeploymentTarget) -> AwsCredentials | None:
    """The deployment's own keys (LiteLLM's litellm_params names), or None to use the chain."""
    access_key = _param(target, "aws_access_key_id")
    secret_key = _param(target, "aws_secret_access_key")
    if not access_key or not secret_key:
        return None
    return AwsCredentials(
        access_key, secret_key, _param(target, "aws_session_token") or None, _param(target, "aws_region_name")
    )


def signed_call(call: UpstreamCall, credentials: AwsCredentials) -> UpstreamCall:
    """The call with botocore's SigV4 headers (X-Amz-Date, X-Amz-Security-Token, Authorization)
    for bedrock in the credentials' region; the URL's region placeholder filled in."""
    # botocore (7 MB) is loaded by the first Bedrock call, not by every data plane at start.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = call.url.replace(REGION_PLACEHOLDER, credentials.region)
    request = AWSRequest(method=call.method, url=url, data=call.body, headers=dict(call.headers))
    signer = SigV4Auth(
        Credentials(credentials.access_key, credentials.secret_key, credentials.token),
        SIGNING_SERVICE,
        credentials.region,
    )
    signer.add_auth(request)
    return UpstreamCall(call.method, url, dict(request.headers.items()), call.body)


def _seconds_left(found: Any) -> float:
    from botocore.credentials import RefreshableCredentials

    expiry = getattr(found, "_expiry_time", None) if isinstance(found, RefreshableCredentials) else None
    if not isinstance(expiry, datetime.datetime):
        return CHAIN_CREDENTIALS_SECONDS
    return max(0.0, (expiry - datetime.datetime.now(datetime.UTC)).total_seconds())


class ChainCredentials:
    """The standard AWS credential chain, asked in a worker thread and cached by a TokenCache."""

    def __init__(self) -> None:
        self._cache: TokenCache[str] = TokenCache(self._fetch)

    async def get(self, deployment_id: str) -> AwsCredentials:
        """The chain's current credentials (possibly without keys: the environment has none)."""
        token = await self._cache.get("default", deployment_id)
        fields = orjson.loads(token.value)
        return AwsCredentials(fields["access_key"], fields["secret_key"], fields["token"], fields["region"])

    async def _fetch(self, key: str) -> Token:
        resolved, seconds = await asyncio.to_thread(_resolved_with_lifetime)
        value = orjson.dumps(
            {
                "access_key": resolved.access_key,
                "secret_key": resolved.secret_key,
                "token": resolved.token,
                "region": resolved.region,
            }
        ).decode()
        return Token(value, time.monotonic() + seconds)


def _resolved_with_lifetime() -> tuple[AwsCredentials, float]:
    from botocore.session import Session

    session = Session()
    region = str(session.get_config_variable("region") or "")
    found = session.get_credentials()
    if found is None:
        return AwsCredentials("", "", None, region), CHAIN_CREDENTIALS_SECONDS
    frozen = found.get_frozen_credentials()
    return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token, region), _seconds_left(found)


class BedrockSigner:
    """The CallAuthorizer of Bedrock calls: SigV4 with the deployment's keys, else the chain's."""

    def __init__(self, chain: ChainCredentials | None = None) -> None:
        self._chain = chain or ChainCredentials()

    async def authorize(self, call: UpstreamCall, target: DeploymentTarget) -> UpstreamCall:
        """The call, signed."""
        own = deployment_keys(target)
        region = _param(target, "aws_region_name")
        if own is not None and region:
            return signed_call(call, own)
        chain = await self._chain.get(target.deployment_id)
        credentials = own or chain
        region = region or chain.region
        if not credentials.access_key:
            raise UpstreamError(
                f"deployment {target.deployment_id!r} has no AWS credentials: set aws_access_key_id and "
                "aws_secret_access_key, or give the gateway an AWS identity (environment, web identity)",
                code="upstream_credentials_unavailable",
            )
        if not region:
            raise UpstreamError(
                f"deployment {target.deployment_id!r} names no AWS region: set aws_region_name or AWS_REGION",
                code="upstream_credentials_unavailable",
            )
        return signed_call(
            call, AwsCredentials(credentials.access_key, credentials.secret_key, credentials.token, region)
        )


def bedrock_operations() -> dict[str, OperationAdapter]:
    """Every operation a Bedrock deployment answers."""
    chat = BedrockChat()
    return {"chat": chat, "responses": responses_via_chat(chat), "messages": messages_via_chat(chat)}
