"""A provider row's quirks applied to an OpenAI request body (pure): the body an OpenAI-compatible
provider is sent, with its parameter names, values, ranges and content shape."""

from __future__ import annotations

from typing import Any

from hydite_common.errors import InvalidRequestError
from hydite_common.provider_table import ProviderRow, Quirks


def _flattened(content: Any) -> Any:
    """Text parts joined into one string; content with any other part stays as it is."""
    if not isinstance(content, list) or not content:
        return content
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            return content
        texts.append(part["text"])
    return "\n".join(texts)


def _flattened_messages(messages: Any) -> Any:
    if not isinstance(messages, list):
        return messages
    return [
        {**message, "content": _flattened(message["content"])}
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        else message
        for message in messages
    ]


def apply_quirks(row: ProviderRow, quirks: Quirks, body: dict[str, Any]) -> dict[str, Any]:
    """The body as the provider takes it (a new dict; body is left as it is). A value the provider
    refuses is a 400 naming the parameter."""
    for name, refused in quirks.refused_values.items():
        if name in body and any(body[name] == value for value in refused):
            raise InvalidRequestError(
                f"provider {row.name!r} does not accept {name}={body[name]!r}", param=name
            )
    for name, accepted in quirks.accepted_values.items():
        if body.get(name) is not None and not any(body[name] == value for value in accepted):
            raise InvalidRequestError(
                f"provider {row.name!r} takes {name} as one of {list(accepted)!r} for this model, "
                f"not {body[name]!r}",
                param=name,
            )
    never_sent = quirks.dropped | quirks.unsupported
    out = {name: value for name, value in body.items() if name not in never_sent}
    for source, target in quirks.renames.items():
        if source in out:
            value = out.pop(source)
            out.setdefault(target, value)
    for name, mapping in quirks.value_maps.items():
        value = out.get(name)
        if isinstance(value, str) and value in mapping:
            out[name] = mapping[value]
    for name, (low, high) in quirks.clamps.items():
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = min(max(value, low), high)
    if quirks.flatten_text_content and "messages" in out:
        out["messages"] = _flattened_messages(out["messages"])
    for name, by_value in quirks.derived_fields.items():
        if name not in out:
            continue
        value = out.pop(name)
        fields = by_value.get(value) if isinstance(value, str) else None
        if fields is None:
            raise InvalidRequestError(
                f"provider {row.name!r} takes {name} as one of {sorted(by_value)}, not {value!r}",
                param=name,
            )
        for field_name, field_value in fields.items():
            out.setdefault(field_name, field_value)
    return out
