"""LiteLLM request fields Hydite keeps and shows but does not act on yet.

Each is declared, typed and bounded, on the aggregate's request model (so a name neither product
defines is still a 422); the ones a body sets are kept together in the row's `extra_fields` JSON
column (null sets a field back to unset) and shown at the top level of the row's public form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel

from hydite_controlplane.admin.entities import Derive
from hydite_controlplane.admin.validation import MAX_JSON_BYTES, MAX_JSON_DEPTH, LimitFields, check_bounded

STORED_COLUMN = "extra_fields"


def _bounded_list(value: list[Any]) -> list[Any]:
    check_bounded(value, max_depth=MAX_JSON_DEPTH)
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise ValueError(f"may be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


JsonList = Annotated[list[Any], AfterValidator(_bounded_list)]
"""A free-form JSON list field (LiteLLM types some fields only as `list`): within the bounds."""


def stored_names(model: type[BaseModel]) -> frozenset[str]:
    """The fields a model of stored LiteLLM fields declares."""
    return frozenset(model.model_fields)


def with_stored(stored: Mapping[str, Any], body: BaseModel, names: frozenset[str]) -> dict[str, Any]:
    """The stored fields after a body: each it sets replaces its value, null drops it."""
    given = names & body.model_fields_set
    values = body.model_dump(mode="json", include=set(given))
    merged = dict(stored)
    for name in given:
        if values.get(name) is None:
            merged.pop(name, None)
        else:
            merged[name] = values[name]
    return merged


def derive_stored(names: frozenset[str]) -> Derive:
    """An Entity.derive that keeps these fields of a body in the row's extra_fields column."""

    def derive(row: Any, body: LimitFields) -> Mapping[str, Any]:
        if not names & body.model_fields_set:
            return {}
        return {STORED_COLUMN: with_stored(getattr(row, STORED_COLUMN), body, names)}

    return derive


def shown_stored(data: dict[str, Any]) -> dict[str, Any]:
    """A public form with the stored fields at the top level (a column of the same name wins)."""
    stored = data.pop(STORED_COLUMN, None) or {}
    return {**stored, **data}
