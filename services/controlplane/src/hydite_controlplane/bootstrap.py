"""Declarative bootstrap (HYDITE_CONFIG): a LiteLLM-style YAML applied idempotently at start.

`model_list` entries become deployments and `key_groups` entries key groups; of
`litellm_settings`, `drop_params` and `additional_drop_params`, and of `general_settings`,
`store_prompts_in_spend_logs` become proxy-wide settings every data plane applies, and
`litellm_settings.max_budget` / `budget_duration` the proxy's budget (the rest of those sections is
reported as not applied).
Applying the same file twice changes nothing (no new config version); entries
missing from the file are left alone, since the admin API may have added them.
`api_key: os.environ/NAME` reads the secret from the environment, as LiteLLM does.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.config_types import (
    ADDITIONAL_DROP_PARAMS_SETTING,
    DROP_PARAMS_SETTING,
    STORE_PROMPTS_SETTING,
)
from hydite_common.credentials import CredentialCipher
from hydite_controlplane.admin.entities import row_public
from hydite_controlplane.admin.key_groups import KEY_GROUPS, KeyGroupFields
from hydite_controlplane.admin.models import NewModelRequest, apply_params, deployment_public, provider_of
from hydite_controlplane.admin.validation import AdminRequest, Duration, validate
from hydite_controlplane.config.changelog import CONFIG_WRITE_LOCK_ID
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.models.principals import KeyGroupRow
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.resources import save_resources

log = logging.getLogger(__name__)

ENV_PREFIX = "os.environ/"
# LiteLLM config sections that Hydite configures elsewhere (environment, admin API).
NOT_APPLIED = ("router_settings", "environment_variables")
BOOTSTRAP_ACTOR = "bootstrap"


class BootstrapError(ValueError):
    """The bootstrap file cannot be used; the message names the entry and field."""


class LitellmSettings(AdminRequest):
    """The `litellm_settings` Hydite applies; LiteLLM's others are kept out by `parse_bootstrap`."""

    drop_params: bool = False
    additional_drop_params: list[str] = Field(default_factory=list)
    max_budget: float | None = Field(default=None, ge=0)
    """The proxy's budget: what every request together may spend (per budget_duration)."""
    budget_duration: Duration | None = None


class GeneralSettings(AdminRequest):
    """The `general_settings` Hydite applies; LiteLLM's others are kept out by `parse_bootstrap`."""

    store_prompts_in_spend_logs: bool = False


class BootstrapFile(AdminRequest):
    """The sections Hydite applies."""

    model_list: list[NewModelRequest] = Field(default_factory=list)
    key_groups: list[KeyGroupFields] = Field(default_factory=list)
    litellm_settings: LitellmSettings = Field(default_factory=LitellmSettings)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)

    def proxy_settings(self) -> dict[str, object]:
        """The proxy-wide settings the file sets (`hydite_common.config_types` names them)."""
        found: dict[str, object] = {}
        if self.litellm_settings.drop_params:
            found[DROP_PARAMS_SETTING] = True
        if self.litellm_settings.additional_drop_params:
            found[ADDITIONAL_DROP_PARAMS_SETTING] = self.litellm_settings.additional_drop_params
        if self.general_settings.store_prompts_in_spend_logs:
            found[STORE_PROMPTS_SETTING] = True
        return found


def _resolve_env(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise BootstrapError(f"environment variable {name} (referenced as {value}) is not set")
        return os.environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v) for v in value]
    return value


def parse_bootstrap(source: str) -> BootstrapFile:
    """Parse and validate bootstrap YAML (pure, apart from reading os.environ/ references)."""
    try:
        raw = yaml.safe_load(source) or {}
    except yaml.YAMLError as exc:
        raise BootstrapError(f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise BootstrapError("the bootstrap file must be a mapping with model_list / key_groups")
    ignored = [section for section in NOT_APPLIED if section in raw]
    for section, applied in (("litellm_settings", LitellmSettings), ("general_settings", GeneralSettings)):
        given = raw.get(section)
        if isinstance(given, dict):
            kept = {k: v for k, v in given.items() if k in applied.model_fields}
            ignored += [f"{section}.{k}" for k in given if k not in kept]
            raw = {**raw, section: kept}
        elif given is None:
            raw = {k: v for k, v in raw.items() if k != section}
    if ignored:
        log.warning("bootstrap settings not applied by Hydite: %s", ", ".join(ignored))
    wanted = {k: v for k, v in raw.items() if k not in NOT_APPLIED}
    try:
        return validate(BootstrapFile, _resolve_env(wanted))
    except Exception as exc:
        raise BootstrapError(f"invalid bootstrap file: {exc}") from None


def deployment_id(entry: NewModelRequest) -> str:
    """model_info.id, or a stable id derived from the entry (same entry, same id)."""
    if entry.model_info.get("id"):
        return str(entry.model_info["id"])
    identity = orjson.dumps(
        {"model_name": entry.model_name, "params": entry.litellm_params.model_dump(exclude={"api_key"})},
        option=orjson.OPT_SORT_KEYS,
    )
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "hydite-bootstrap:" + identity.decode()))


def _comparable(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(exclude={"created_at", "updated_at", "created_by", "api_key_encrypted"})


def _desired_deployment(entry: NewModelRequest, cipher: CredentialCipher) -> DeploymentRow:
    provider, upstream_model = provider_of(
        entry.litellm_params.model, entry.litellm_params.custom_llm_provider
    )
    row = DeploymentRow(
        model_id=deployment_id(entry), model_name=entry.model_name, provider=provider,
        upstream_model=upstream_model, model_info={k: v for k, v in entry.model_info.items() if k != "id"},
        created_by=BOOTSTRAP_ACTOR,
    )  # fmt: skip
    apply_params(row, entry.litellm_params, cipher)
    return row


def _desired_group(group: KeyGroupFields) -> KeyGroupRow:
    if not group.name:
        raise BootstrapError("every key group needs a name")
    row = KeyGroupRow(name=group.name, created_by=BOOTSTRAP_ACTOR)
    KEY_GROUPS.apply(row, group)
    return row


async def apply_bootstrap(
    sessions: async_sessionmaker[AsyncSession], cipher: CredentialCipher, bootstrap: BootstrapFile
) -> int:
    """Make the database match the file's entries, in one transaction; returns entries changed.

    An entry is written only when it differs, so re-applying the same file adds no config version.
    """
    async with sessions() as session:
        # Serialises concurrent control-plane starts: compare and write see the same state.
        await run_sql(session, ("SELECT pg_advisory_xact_lock(:k)"), {"k": CONFIG_WRITE_LOCK_ID})
        changed: list[SQLModel] = []
        for entry in bootstrap.model_list:
            desired = _desired_deployment(entry, cipher)
            current = await session.get(DeploymentRow, desired.model_id)
            same = (
                current is not None
                and _comparable(current) == _comparable(desired)
                and (cipher.decrypt(current.api_key_encrypted) == cipher.decrypt(desired.api_key_encrypted))
            )
            if not same:
                if current is not None:
                    desired.created_at, desired.created_by = current.created_at, current.created_by
                changed.append(await session.merge(desired))
                record_audit(
                    session=session, actor=BOOTSTRAP_ACTOR, action="model.bootstrap", object_type="model",
                    object_id=desired.model_id, before=None, after=deployment_public(desired, cipher),
                )  # fmt: skip
        for group in bootstrap.key_groups:
            desired_group = _desired_group(group)
            current_group = await session.get(KeyGroupRow, desired_group.name)
            if current_group is None or _comparable(current_group) != _comparable(desired_group):
                if current_group is not None:
                    desired_group.created_at = current_group.created_at
                    desired_group.created_by = current_group.created_by
                changed.append(await session.merge(desired_group))
                record_audit(
                    session=session, actor=BOOTSTRAP_ACTOR, action="group.bootstrap", object_type="group",
                    object_id=desired_group.name, before=None, after=row_public(desired_group),
                )  # fmt: skip
        if changed:
            await save_resources(*changed, session=session)
        await session.commit()
    return len(changed)


def read_bootstrap(path: str) -> BootstrapFile:
    """Read and parse the file at path."""
    try:
        source = Path(path).read_text()
    except OSError as exc:
        raise BootstrapError(f"cannot read HYDITE_CONFIG {path}: {exc.strerror}") from None
    return parse_bootstrap(source)
