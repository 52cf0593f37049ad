"""What the fakes put in a tool call's arguments: a value of its JSON type for each property of the
tool's schema (Anthropic's input_schema, Gemini's parameters)."""

from __future__ import annotations

from typing import Any

_VALUES: dict[str, Any] = {
    "string": "fake",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "array": [],
    "object": {},
}


def arguments_for(schema: Any) -> dict[str, Any]:
    """Each property of an object schema with a value of its type (Gemini spells types in capitals)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {
        name: _VALUES.get(str(spec.get("type", "")).lower()) if isinstance(spec, dict) else None
        for name, spec in properties.items()
    }
