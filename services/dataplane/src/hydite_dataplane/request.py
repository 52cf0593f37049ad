"""The one internal request shape every inbound wire format is decoded into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hydite.config.v1 import config_pb2 as pb
from hydite_dataplane.snapshot import DeploymentTarget

if TYPE_CHECKING:
    from hydite_dataplane.limits import RateWindow


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


@dataclass(slots=True)
class InferenceRequest:
    """An authenticated inference call on its way to a provider."""

    request_id: str
    operation: str  # chat, completions, embeddings, ...
    wire_format: str  # inbound format: openai
    model: str
    body: dict[str, Any]
    stream: bool
    key_hash: str
    key: pb.VirtualKey
    start_time: float  # epoch seconds
    start_perf: float  # perf_counter at arrival
    client_wants_stream_usage: bool = False
    customer_id: str = ""
    tags: list[str] = field(default_factory=list)
    requested_model: str = ""  # what the client asked for; `model` becomes a fallback's name
    attempts: int = 0  # upstream calls made so far (retries and fallbacks included)
    deployment: DeploymentTarget | None = None  # the deployment of the latest attempt
    rate_windows: Sequence[RateWindow] = ()  # limit counters this request holds a slot in
    finished: bool = False  # the post-call hooks have run
    trace_parent: str | None = None  # None: not traced; "": traced as a new trace
