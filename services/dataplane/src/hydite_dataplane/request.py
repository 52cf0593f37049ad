"""The one internal request shape every inbound wire format is decoded into, who sent it, and the
one shape every way a request can end is recorded in (`Outcome`, built only by `outcome_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import STORE_PROMPTS_SETTING
from hydite_common.errors import HyditeError
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot
from hydite_dataplane.limits.rules import LimitPlan

Owner = pb.User | pb.Team | pb.Organization


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated key, the snapshot it was found in, and its owners: user, team and the
    organization of the chain (the key's own, else its team's, else its user's)."""

    snapshot: Snapshot
    key_hash: str
    key: pb.VirtualKey
    user: pb.User | None = None
    team: pb.Team | None = None
    organization: pb.Organization | None = None
    organization_id: str = ""  # "" when no owner names one; set but missing: it allows nothing
    store_prompts: bool = False
    """Whether its prompts and answers are stored (its key's or team's `store_prompts`, or the
    proxy-wide setting)."""

    @classmethod
    def of(cls, snapshot: Snapshot, key_hash: str, key: pb.VirtualKey) -> Caller:
        """The caller of key, its owners looked up in snapshot (missing ones are None)."""
        user = snapshot.users.get(key.user_id) if key.user_id else None
        team = snapshot.teams.get(key.team_id) if key.team_id else None
        organization_id = (
            key.organization_id
            or (team.organization_id if team is not None else "")
            or (user.organization_id if user is not None else "")
        )
        organization = snapshot.organizations.get(organization_id) if organization_id else None
        store_prompts = key.store_prompts or (team is not None and team.store_prompts)
        if not store_prompts and (flag := snapshot.settings.get(STORE_PROMPTS_SETTING)) is not None:
            store_prompts = orjson.loads(flag) is True
        return cls(snapshot, key_hash, key, user, team, organization, organization_id, store_prompts)

    def owners(self) -> tuple[tuple[str, str, Owner | None], ...]:
        """(kind, id, owner or None) of the key's user, team and organization."""
        key = self.key
        return (
            ("user", key.user_id, self.user),
            ("team", key.team_id, self.team),
            ("organization", self.organization_id, self.organization),
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one request used, in every unit a price may name: tokens as the provider reported them
    (or as estimated), and the characters, seconds, images or search units it is billed by."""

    prompt_tokens: int = 0
    """Every input token, cache reads and cache writes included (OpenAI's convention)."""
    completion_tokens: int = 0
    """Every output token, reasoning included."""
    cached_tokens: int = 0
    """Input tokens read from the provider's prompt cache."""
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (Anthropic's cache creation)."""
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0
    input_characters: int = 0
    """Characters of text turned into speech (/audio/speech)."""
    audio_seconds: float = 0.0
    """Seconds of audio transcribed or translated."""
    images: int = 0
    """Images generated or edited (the answer's count)."""
    image_size: str = ""
    """The images' size as asked ("1024x1024"), for prices per size."""
    image_quality: str = ""
    """The images' quality as asked ("standard", "hd", "low", ...), for prices per quality."""
    search_units: int = 0
    """Rerank search units (Cohere's billed_units.search_units, else one per query)."""
    unmetered: str = ""
    """A unit the request is billed by that neither the answer nor the request told
    ("audio_seconds"): left at 0, never guessed, and named in the usage event."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def updated_by(self, later: TokenUsage) -> TokenUsage:
        """This usage with every count a later report of the same answer gives (non-zero) replaced."""
        return TokenUsage(*(new or old for old, new in zip(_counts(self), _counts(later), strict=True)))  # type: ignore[arg-type]


def _counts(usage: TokenUsage) -> tuple[int | float | str, ...]:
    return (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
        usage.cache_write_tokens,
        usage.audio_prompt_tokens,
        usage.audio_completion_tokens,
        usage.input_characters,
        usage.audio_seconds,
        usage.images,
        usage.image_size,
        usage.image_quality,
        usage.search_units,
        usage.unmetered,
    )


NO_USAGE = TokenUsage()


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """What a client asks of the gateway itself in a request body; no provider ever sees these."""

    num_retries: int | None = None
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()
    mock_response: str | None = None
    """The reply the built-in mock provider gives."""
    drop_params: bool | None = None
    """Drop parameters the provider cannot honour instead of refusing them (None: the deployment's choice)."""
    additional_drop_params: tuple[str, ...] = ()
    """Parameters never sent to the provider (LiteLLM's additional_drop_params)."""


NO_OPTIONS = GatewayOptions()


NO_HEADERS: Mapping[str, str] = MappingProxyType({})

PASSED_CLIENT_HEADERS = ("anthropic-beta", "anthropic-version")
"""Headers of the client's request that reach the provider (the adapter decides where)."""


def provider_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """The PASSED_CLIENT_HEADERS a client sent (the shared empty mapping when none)."""
    found = {name: value for name in PASSED_CLIENT_HEADERS if (value := headers.get(name))}
    return found or NO_HEADERS


@dataclass(slots=True)
class InferenceRequest:
    """An authenticated inference call on its way to a provider."""

    request_id: str
    operation: str  # chat, completions, embeddings, ...
    wire_format: str  # inbound format: openai
    model: str
    body: dict[str, Any]  # the client's body without the gateway's own fields (see `options`)
    stream: bool
    caller: Caller
    start_time: float  # epoch seconds
    start_perf: float  # perf_counter at arrival
    options: GatewayOptions = NO_OPTIONS
    client_wants_stream_usage: bool = False
    customer_id: str = ""
    customer: pb.Customer | None = None  # the end user, when the snapshot knows them
    tags: list[str] = field(default_factory=list)
    requested_model: str = ""  # what the client asked for; `model` becomes a fallback's name
    attempts: int = 0  # upstream calls made so far (retries and fallbacks included)
    deployment: DeploymentTarget | None = None  # the deployment of the latest attempt
    trace_parent: str | None = None  # None: not traced; "": traced as a new trace
    upstream_traceparent: str | None = None
    """The traceparent providers are sent: the gateway span's when traced, else the client's own."""
    upstream_seconds: float = 0.0  # time spent waiting for providers, every attempt so far
    overhead_seconds: float = -1.0  # x-hydite-overhead-ms in seconds, once known (< 0: not yet)
    provider_headers: Mapping[str, str] = field(default_factory=lambda: NO_HEADERS)
    route: str = ""  # the route's path, as the route table names it
    client_ip: str = ""
    fallbacks: int = 0  # fallback model groups moved to
    body_bytes: int = 0  # the size of the client's body, as it came
    limit_headers: dict[str, str] | None = None  # x-ratelimit-* of the limits the request counts in
    limit_plan: LimitPlan | None = None  # the limits and budgets it falls under, once looked up
    """Client headers a provider's API reads and the gateway passes on (`anthropic-beta`, ...)."""

    @property
    def key(self) -> pb.VirtualKey:
        """The caller's virtual key."""
        return self.caller.key

    @property
    def key_hash(self) -> str:
        """The caller's key hash."""
        return self.caller.key_hash


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended: where it went, what it used, and whether it worked."""

    target: DeploymentTarget | None
    usage: TokenUsage
    status: str  # "success" | "failure"
    http_status: int
    error_code: str = ""
    usage_estimated: bool = False
    ttft_ms: float = 0.0
    response_id: str = ""
    """The id the answer carried, when it had one."""
    error_type: str = ""
    """The OpenAI error type of a failure."""
    kept_stream: bytes = b""
    """A stream that ended without its usage: the bytes relayed (bounded), to be counted."""
    reported_usage: TokenUsage | None = None
    """Such a stream's counts the provider gave before it ended (None: none at all)."""
    answer: dict[str, Any] | None = None
    """The complete answer as sent, for a caller that stores its prompts and responses."""


def outcome_of(
    target: DeploymentTarget | None,
    *,
    usage: TokenUsage = NO_USAGE,
    error: HyditeError | None = None,
    http_status: int = 200,
    client_gone: bool = False,
    usage_estimated: bool = False,
    ttft_ms: float = 0.0,
    response_id: str = "",
    kept_stream: bytes = b"",
    reported_usage: TokenUsage | None = None,
    answer: dict[str, Any] | None = None,
) -> Outcome:
    """The outcome of a request that reached target (None: no deployment was chosen): failed with
    error, else answered with http_status (and maybe left by its client before the end)."""
    if error is not None:
        return Outcome(
            target,
            usage,
            "failure",
            error.status,
            error.code,
            usage_estimated,
            ttft_ms,
            response_id,
            error.error_type,
            kept_stream,
            reported_usage,
            answer,
        )
    code = "client_disconnected" if client_gone else ""
    return Outcome(
        target,
        usage,
        "success",
        http_status,
        code,
        usage_estimated,
        ttft_ms,
        response_id,
        "",
        kept_stream,
        reported_usage,
        answer,
    )
