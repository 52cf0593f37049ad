"""The one update function of the admin API: copy the fields a request set onto a table row.

What differs between aggregates is data (`UpdateRules`) or a value a small pre-step computed
(`derived`): a duration that becomes `expires`, an api_key that becomes its encrypted column.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from hydite_common.errors import UnprocessableEntityError
from hydite_controlplane.models.common import RecordColumns, utcnow


@dataclass(frozen=True)
class UpdateRules:
    """How the request fields of one aggregate land on its row."""

    not_columns: frozenset[str] = frozenset()
    """Request fields never copied: ids, and fields a pre-step turns into other columns."""
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"metadata": "metadata_"}))
    """Request field -> column, where the names differ."""
    null_clears: bool = False
    """Null for a column that cannot hold it: True sets the column's default ([], {}, False, the
    default role), False is a 422."""
    null_keeps: bool = False
    """Null for a column that cannot hold it leaves the column as it is (a new row: its default), as
    LiteLLM's bodies use null for "not set"; wins over null_clears."""
    param_prefix: str = ""
    """Where the fields sit in the request body, for the 422's param (e.g. "litellm_params.")."""
    null_message: str = "{param}: may not be null"
    """The 422's message; {param} is the field's place in the body."""


NO_DERIVED: Mapping[str, Any] = MappingProxyType({})


def apply_update(
    row: RecordColumns, body: BaseModel, rules: UpdateRules, *, derived: Mapping[str, Any] = NO_DERIVED
) -> None:
    """Set the columns of the declared fields `body` set (unset fields keep their value) and the
    `derived` columns; a column the body set by name wins over a derived one. Touches updated_at.

    List items that are request models are stored as their fields without nulls.
    """
    row_fields = type(row).model_fields
    changes = dict(derived)
    for name in type(body).model_fields:
        if name not in body.model_fields_set or name in rules.not_columns:
            continue
        column = rules.columns.get(name, name)
        value = getattr(body, name)
        if value is None and not _nullable(row_fields[column]):
            if rules.null_keeps:
                continue
            if not rules.null_clears:
                param = rules.param_prefix + name
                raise UnprocessableEntityError(rules.null_message.format(param=param), param=param)
            value = row_fields[column].get_default(call_default_factory=True)
        elif isinstance(value, list):
            value = [v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
        changes[column] = value
    row.sqlmodel_update(changes)
    row.updated_at = utcnow()


def _nullable(column: FieldInfo) -> bool:
    return type(None) in typing.get_args(column.annotation)
