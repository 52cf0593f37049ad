"""The one internal request shape every inbound wire format is decoded into, who sent it, and the
one shape every way a request can end is recorded in (`Outcome`, built only by `outcome_of`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import HyditeError
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot

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
        return cls(snapshot, key_hash, key, user, team, organization, organization_id)

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
    """Tokens of one request as the provider reported them (or as estimated)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


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


NO_OPTIONS = GatewayOptions()


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
) -> Outcome:
    """The outcome of a request that reached target (None: no deployment was chosen): failed with
    error, else answered with http_status (and maybe left by its client before the end)."""
    if error is not None:
        return Outcome(
            target, usage, "failure", error.status, error.code, usage_estimated, ttft_ms, response_id
        )
    code = "client_disconnected" if client_gone else ""
    return Outcome(target, usage, "success", http_status, code, usage_estimated, ttft_ms, response_id)
