from google.protobuf import any_pb2 as _any_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamRequest(_message.Message):
    __slots__ = ("hello", "ack", "nack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ack: Ack
    nack: Nack
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node_id", "version", "hostname", "build")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    version: int
    hostname: str
    build: str
    def __init__(self, node_id: _Optional[str] = ..., version: _Optional[int] = ..., hostname: _Optional[str] = ..., build: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("version", "nonce")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    version: int
    nonce: str
    def __init__(self, version: _Optional[int] = ..., nonce: _Optional[str] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("version", "nonce", "reason")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    version: int
    nonce: str
    reason: str
    def __init__(self, version: _Optional[int] = ..., nonce: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("snapshot_begin", "snapshot_chunk", "snapshot_end", "deltas")
    SNAPSHOT_BEGIN_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_END_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    snapshot_begin: SnapshotBegin
    snapshot_chunk: SnapshotChunk
    snapshot_end: SnapshotEnd
    deltas: DeltaBatch
    def __init__(self, snapshot_begin: _Optional[_Union[SnapshotBegin, _Mapping]] = ..., snapshot_chunk: _Optional[_Union[SnapshotChunk, _Mapping]] = ..., snapshot_end: _Optional[_Union[SnapshotEnd, _Mapping]] = ..., deltas: _Optional[_Union[DeltaBatch, _Mapping]] = ...) -> None: ...

class SnapshotBegin(_message.Message):
    __slots__ = ("version", "nonce", "chunk_count", "schema_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    nonce: str
    chunk_count: int
    schema_version: int
    def __init__(self, version: _Optional[int] = ..., nonce: _Optional[str] = ..., chunk_count: _Optional[int] = ..., schema_version: _Optional[int] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("version", "nonce", "index", "resources")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    version: int
    nonce: str
    index: int
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    def __init__(self, version: _Optional[int] = ..., nonce: _Optional[str] = ..., index: _Optional[int] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ...) -> None: ...

class SnapshotEnd(_message.Message):
    __slots__ = ("version", "nonce")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    version: int
    nonce: str
    def __init__(self, version: _Optional[int] = ..., nonce: _Optional[str] = ...) -> None: ...

class DeltaBatch(_message.Message):
    __slots__ = ("from_version", "version", "nonce", "deltas", "schema_version")
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    from_version: int
    version: int
    nonce: str
    deltas: _containers.RepeatedCompositeFieldContainer[Delta]
    schema_version: int
    def __init__(self, from_version: _Optional[int] = ..., version: _Optional[int] = ..., nonce: _Optional[str] = ..., deltas: _Optional[_Iterable[_Union[Delta, _Mapping]]] = ..., schema_version: _Optional[int] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("type_url", "upserts", "removed_names")
    TYPE_URL_FIELD_NUMBER: _ClassVar[int]
    UPSERTS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_NAMES_FIELD_NUMBER: _ClassVar[int]
    type_url: str
    upserts: _containers.RepeatedCompositeFieldContainer[Resource]
    removed_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type_url: _Optional[str] = ..., upserts: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., removed_names: _Optional[_Iterable[str]] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("name", "body")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    name: str
    body: _any_pb2.Any
    def __init__(self, name: _Optional[str] = ..., body: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget", "soft_budget", "budget_duration", "model_rpm_limit", "model_tpm_limit", "budget_windows")
    class ModelRpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ModelTpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    rpm_limit: int
    tpm_limit: int
    max_parallel_requests: int
    max_budget: float
    soft_budget: float
    budget_duration: str
    model_rpm_limit: _containers.ScalarMap[str, int]
    model_tpm_limit: _containers.ScalarMap[str, int]
    budget_windows: _containers.RepeatedCompositeFieldContainer[BudgetWindow]
    def __init__(self, rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ..., max_parallel_requests: _Optional[int] = ..., max_budget: _Optional[float] = ..., soft_budget: _Optional[float] = ..., budget_duration: _Optional[str] = ..., model_rpm_limit: _Optional[_Mapping[str, int]] = ..., model_tpm_limit: _Optional[_Mapping[str, int]] = ..., budget_windows: _Optional[_Iterable[_Union[BudgetWindow, _Mapping]]] = ...) -> None: ...

class BudgetWindow(_message.Message):
    __slots__ = ("max_budget", "soft_budget", "budget_duration")
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    max_budget: float
    soft_budget: float
    budget_duration: str
    def __init__(self, max_budget: _Optional[float] = ..., soft_budget: _Optional[float] = ..., budget_duration: _Optional[str] = ...) -> None: ...

class VirtualKey(_message.Message):
    __slots__ = ("key_hash", "key_alias", "key_name", "user_id", "team_id", "organization_id", "customer_id", "key_group", "models", "blocked", "expires_unix_ms", "limits", "tags", "allowed_routes", "guardrails", "metadata_json", "aliases", "budget_id", "store_prompts")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_GROUP_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ROUTES_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    key_alias: str
    key_name: str
    user_id: str
    team_id: str
    organization_id: str
    customer_id: str
    key_group: str
    models: _containers.RepeatedScalarFieldContainer[str]
    blocked: bool
    expires_unix_ms: int
    limits: Limits
    tags: _containers.RepeatedScalarFieldContainer[str]
    allowed_routes: _containers.RepeatedScalarFieldContainer[str]
    guardrails: _containers.RepeatedScalarFieldContainer[str]
    metadata_json: bytes
    aliases: _containers.ScalarMap[str, str]
    budget_id: str
    store_prompts: bool
    def __init__(self, key_hash: _Optional[str] = ..., key_alias: _Optional[str] = ..., key_name: _Optional[str] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., key_group: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., blocked: _Optional[bool] = ..., expires_unix_ms: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., allowed_routes: _Optional[_Iterable[str]] = ..., guardrails: _Optional[_Iterable[str]] = ..., metadata_json: _Optional[bytes] = ..., aliases: _Optional[_Mapping[str, str]] = ..., budget_id: _Optional[str] = ..., store_prompts: _Optional[bool] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "user_role", "team_ids_csv", "organization_id", "models", "blocked", "limits", "metadata_json", "aliases")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_FIELD_NUMBER: _ClassVar[int]
    TEAM_IDS_CSV_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    user_role: str
    team_ids_csv: str
    organization_id: str
    models: _containers.RepeatedScalarFieldContainer[str]
    blocked: bool
    limits: Limits
    metadata_json: bytes
    aliases: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[str] = ..., user_role: _Optional[str] = ..., team_ids_csv: _Optional[str] = ..., organization_id: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., blocked: _Optional[bool] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., metadata_json: _Optional[bytes] = ..., aliases: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Team(_message.Message):
    __slots__ = ("team_id", "team_alias", "organization_id", "models", "blocked", "limits", "key_group", "metadata_json", "model_aliases", "budget_id", "store_prompts", "member_defaults", "member_limits")
    class ModelAliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MemberLimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Limits
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    KEY_GROUP_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LIMITS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    team_alias: str
    organization_id: str
    models: _containers.RepeatedScalarFieldContainer[str]
    blocked: bool
    limits: Limits
    key_group: str
    metadata_json: bytes
    model_aliases: _containers.ScalarMap[str, str]
    budget_id: str
    store_prompts: bool
    member_defaults: Limits
    member_limits: _containers.MessageMap[str, Limits]
    def __init__(self, team_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., organization_id: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., blocked: _Optional[bool] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., key_group: _Optional[str] = ..., metadata_json: _Optional[bytes] = ..., model_aliases: _Optional[_Mapping[str, str]] = ..., budget_id: _Optional[str] = ..., store_prompts: _Optional[bool] = ..., member_defaults: _Optional[_Union[Limits, _Mapping]] = ..., member_limits: _Optional[_Mapping[str, Limits]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("organization_id", "organization_alias", "models", "blocked", "limits", "metadata_json")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    organization_alias: str
    models: _containers.RepeatedScalarFieldContainer[str]
    blocked: bool
    limits: Limits
    metadata_json: bytes
    def __init__(self, organization_id: _Optional[str] = ..., organization_alias: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., blocked: _Optional[bool] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., metadata_json: _Optional[bytes] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("customer_id", "alias", "blocked", "limits", "allowed_models", "metadata_json", "team_id", "organization_id", "budget_id", "allowed_model_region")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODEL_REGION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    alias: str
    blocked: bool
    limits: Limits
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    metadata_json: bytes
    team_id: str
    organization_id: str
    budget_id: str
    allowed_model_region: str
    def __init__(self, customer_id: _Optional[str] = ..., alias: _Optional[str] = ..., blocked: _Optional[bool] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., allowed_models: _Optional[_Iterable[str]] = ..., metadata_json: _Optional[bytes] = ..., team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., budget_id: _Optional[str] = ..., allowed_model_region: _Optional[str] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("budget_id", "limits")
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    budget_id: str
    limits: Limits
    def __init__(self, budget_id: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class KeyGroup(_message.Message):
    __slots__ = ("name", "models", "routing_strategy", "limits", "metadata_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    models: _containers.RepeatedScalarFieldContainer[str]
    routing_strategy: str
    limits: Limits
    metadata_json: bytes
    def __init__(self, name: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., routing_strategy: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., metadata_json: _Optional[bytes] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("deployment_id", "model_name", "provider", "upstream_model", "api_base", "api_key_encrypted", "api_version", "timeout_seconds", "stream_timeout_seconds", "weight", "limits", "input_cost_per_token", "output_cost_per_token", "model_info_json", "extra_params_json", "max_retries")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    API_BASE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    INPUT_COST_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COST_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    model_name: str
    provider: str
    upstream_model: str
    api_base: str
    api_key_encrypted: bytes
    api_version: str
    timeout_seconds: float
    stream_timeout_seconds: float
    weight: float
    limits: Limits
    input_cost_per_token: float
    output_cost_per_token: float
    model_info_json: bytes
    extra_params_json: bytes
    max_retries: int
    def __init__(self, deployment_id: _Optional[str] = ..., model_name: _Optional[str] = ..., provider: _Optional[str] = ..., upstream_model: _Optional[str] = ..., api_base: _Optional[str] = ..., api_key_encrypted: _Optional[bytes] = ..., api_version: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., stream_timeout_seconds: _Optional[float] = ..., weight: _Optional[float] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., input_cost_per_token: _Optional[float] = ..., output_cost_per_token: _Optional[float] = ..., model_info_json: _Optional[bytes] = ..., extra_params_json: _Optional[bytes] = ..., max_retries: _Optional[int] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("name", "limits", "models", "metadata_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    limits: Limits
    models: _containers.RepeatedScalarFieldContainer[str]
    metadata_json: bytes
    def __init__(self, name: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., models: _Optional[_Iterable[str]] = ..., metadata_json: _Optional[bytes] = ...) -> None: ...

class GlobalLimits(_message.Message):
    __slots__ = ("limits",)
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    limits: Limits
    def __init__(self, limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class DataPlaneNode(_message.Message):
    __slots__ = ("node_id", "hostname", "connected_unix_ms")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    connected_unix_ms: int
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., connected_unix_ms: _Optional[int] = ...) -> None: ...

class Setting(_message.Message):
    __slots__ = ("name", "value_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_json: bytes
    def __init__(self, name: _Optional[str] = ..., value_json: _Optional[bytes] = ...) -> None: ...
